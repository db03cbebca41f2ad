"""Tests of ``describe`` / ``format_description`` (soilfuse.io.describe), the core of ``soilfuse info``."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import UnsupportedFileError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.describe import describe, format_description
from soilfuse.io.gridded import write_zarr
from soilfuse.io.stations import StationData, write_stations


# ---------------------------------------------------------------------- every real file
@pytest.mark.slow
def test_describe__every_real_file(real_data: Path) -> None:
    """Describe all files once, then check a handful against the README manifest."""
    files = sorted(f for f in real_data.rglob("*") if f.is_file())
    described = {str(f.relative_to(real_data)): describe(f) for f in files}
    assert len(described) == len(files) > 370
    kinds: dict[str, int] = {}
    for name, info in described.items():
        kinds[info["kind"]] = kinds.get(info["kind"], 0) + 1
        text = format_description(info)
        assert text.startswith(Path(name).name), name
        json.dumps(info, default=str)  # plain values only
    assert kinds["netcdf"] == 297 + 5  # .nc and .nc4
    assert kinds["grib"] == 3 and kinds["hdf4-eos"] == 5 and kinds["ismn"] == 25
    assert kinds["sidecar"] == 7 and kinds["zip"] == 1 and kinds["text"] == 1
    _check_spans_and_extents(described)
    _check_station_files(described, real_data)


def _check_spans_and_extents(described: dict[str, dict[str, Any]]) -> None:
    # SMAP WA 2020-01-29 is empty: no point, date from the name
    smap = described["smap_l3/western_australia_9km_2020-01/Western-Australia_2020-01-29.nc"]
    assert smap["points"] == 0 and smap["time"]["start"] == "2020-01-29" and smap["extent"] is None
    window = described["smap_l3/murrumbidgee_36km_weekly_2018-08_2020-07/SMAP_20181031_20181102.nc"]
    assert (window["time"]["start"], window["time"]["end"], window["points"]) == (
        "2018-10-31", "2018-11-02", 60)
    # ERA5-Land WA: 744 hourly steps in valid_time, the lsm 'time' is 2013-11-29
    land = described["era5_land/western_australia_2020-01/ERA5_Western-Australia_20200101_20200128.nc"]
    assert land["times"]["valid_time"] == {"start": "2020-01-01", "end": "2020-01-31T23:00:00", "count": 744}
    assert land["times"]["time"]["start"] == "2013-11-29"
    e = land["extent"]  # centres -32..-27, 116..122 at 0.1 degree: edges half a cell out
    assert (e["west"], e["east"], e["south"], e["north"]) == pytest.approx((115.95, 122.05, -32.05, -26.95))
    # an ERA5 window whose file name is wrong: valid_time tells the truth
    era5 = described["era5/regional_hourly_subsets/murrumbidgee_weekly_2018-08_2020-07/ERA5_20181031_20181002.nc"]
    assert era5["time"]["start"] == "2018-10-01" and era5["time"]["end"] == "2018-10-31T23:00:00"
    assert era5["time"]["count"] == 72
    # MODIS MOD11A1 is a full 1200 x 1200 tile of 2021-08-15 at 30-40 N
    mod11 = described["modis/MOD11A1.A2021227.h11v05.061.2021228105320.hdf"]
    assert mod11["dims"] == {"y": 1200, "x": 1200} and mod11["time"]["start"] == "2021-08-15"
    assert mod11["extent"]["south"] == pytest.approx(30.0, abs=1e-6)
    assert mod11["extent"]["north"] == pytest.approx(40.0, abs=1e-6)
    lst = next(v for v in mod11["variables"] if v["name"] == "LST_Day_1km")
    assert lst["nan_fraction"] == pytest.approx(1 - 63129 / 1200**2, abs=1e-9)
    mod13 = described["modis/MOD13A2.A2021225.h11v06.061.2021320163717.hdf"]
    assert (mod13["time"]["start"], mod13["time"]["end"]) == ("2021-08-13", "2021-08-28")
    # GRIB: 744 hourly messages of March 2019
    grib = described["era5/global/era5-2mt-2019-03-uk.grib"]
    assert grib["time"] == {"start": "2019-03-01", "end": "2019-03-31T23:00:00", "count": 744, "coord": "time"}
    # DEM GeoTIFF extent as in the manifest
    dem = described["dem/fort_worth_3arcsec/dem.tif"]["extent"]
    assert (dem["west"], dem["east"], dem["south"], dem["north"]) == pytest.approx(
        (-97.485, -97.17917, 32.5225, 32.82167), abs=1e-5)
    # NDVI GeoTIFF: date from YYYY_DOY in the name
    assert described["modis/mod13a1_ndvi_2016_subset/MOD13A1_NDVI_2016_353.tif"]["time"]["start"] == "2016-12-18"


def _check_station_files(described: dict[str, dict[str, Any]], real_data: Path) -> None:
    oz = described["insitu_ismn/oznet_murrumbidgee/"
                   "OZNET_OZNET_S-Coleambally_sm_0.000000_0.050000_Stevens-Hydra-Probe_20170101_20220101.stm"]
    st = oz["stations"][0]
    assert st["station_id"] == "OZNET:S_Coleambally"
    assert (st["lat"], st["lon"], st["depth_from"], st["depth_to"]) == (-34.84262, 145.86692, 0.0, 5.0)
    assert st["records"] == 36459 and st["flags"]["G"] == 24842
    assert (st["start"], st["end"]) == ("2017-01-02T22:00:00", "2021-03-02")
    fr = described["insitu_ismn/fr_aqui/"
                   "FR-Aqui_FR-Aqui_fraye_sm_0.050000_0.050000_ThetaProbe-ML2X_19500101_20210131.stm"]
    assert fr["stations"][0]["records"] == 52045 and fr["stations"][0]["flags"]["G"] == 50089
    assert fr["time"]["start"] == "2013-08-13T10:00:00" and fr["time"]["end"] == "2020-01-01"
    zipped = described["insitu_ismn/multinetwork_2007_2013/Data_header_values.zip"]
    stations = {m["station"]["station_id"]: m["station"] for m in zipped["members"] if "station" in m}
    assert len(stations) == 8
    assert stations["SCAN:Abrams"]["records"] == 55167
    assert stations["MAQU:CST_01"]["start"] == "2008-07-01"
    assert (zipped["time"]["start"], zipped["time"]["end"][:10]) == ("2007-01-01", "2013-12-31")
    static = described["insitu_ismn/cosmos/COSMOS_COSMOS_ARM-1_static_variables.csv"]
    assert static["kind"] == "ismn-static" and static["stations"][0]["station_id"] == "COSMOS:ARM-1"
    meta = described["insitu_ismn/cosmos/Metadata.xml"]
    assert meta["attributes"]["root element"] == "MD_Metadata"
    assert meta["time"]["start"] == "2017-08-10T00:00:00"
    table = described["other/cci44_merra2_gldas21_era5_at_-91.625_32.875.csv"]
    assert table["rows"] == 14667 and table["columns"][1:] == ["sm", "SFMC", "SoilMoi0_10cm_inst", "swvl1"]
    assert (table["time"]["start"], table["time"]["end"]) == ("1978-11-05", "2018-12-31")
    nan_sm = next(v["nan_fraction"] for v in table["variables"] if v["name"] == "sm")
    raw = pd.read_csv(real_data / "other/cci44_merra2_gldas21_era5_at_-91.625_32.875.csv")
    assert nan_sm == pytest.approx(raw["sm"].isna().mean())
    prj = described["dem/gmted2010_durham_nc/be30_grd/be30_grd.prj"]
    assert prj["kind"] == "sidecar" and prj["sidecar_of"] == "be30_grd"
    assert prj["raster"]["dims"] == {"band": 1, "y": 87, "x": 123}
    hdr = described["dem/srtm30_himalaya/himalaya.tif.hdr"]
    assert hdr["sidecar_of"] == "himalaya.tif" and hdr["raster"]["format"] == "GDAL ENVI"


# ---------------------------------------------------------------------- synthetic files
def _cube() -> xr.Dataset:
    grid = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.1)
    data = np.full((4, 10, 10), 0.25, dtype="float32")
    data[:, :5, :] = np.nan  # half of every day missing
    data[3] = np.nan  # and the whole last day: 5/8 missing in total
    ds = xr.Dataset({"sm": (("time", "y", "x"), data)},
                    coords={"time": pd.date_range("2021-06-01", periods=4)})
    ds["sm"].attrs["units"] = "m3 m-3"
    return with_grid(ds, grid)


def test_describe__zarr_product(tmp_path: Path) -> None:
    store = write_zarr(_cube(), tmp_path / "sm.zarr", chunks={"time": 2, "y": 5, "x": 5})
    info = describe(store)
    assert info["kind"] == "zarr" and info["dims"] == {"time": 4, "y": 10, "x": 10}
    sm = next(v for v in info["variables"] if v["name"] == "sm")
    assert sm["units"] == "m3 m-3" and sm["nan_fraction"] == pytest.approx(5 / 8)
    assert info["crs"] == "EPSG:4326"
    e = info["extent"]
    assert (e["west"], e["east"], e["south"], e["north"]) == pytest.approx((100.0, 101.0, 30.0, 31.0))
    assert info["time"] == {"start": "2021-06-01", "end": "2021-06-04", "count": 4, "coord": "time"}
    text = format_description(info)
    assert "sm (time, y, x) float32 [m3 m-3], NaN 62.5%" in text


def test_describe__nan_fraction_is_computed_chunkwise(tmp_path: Path) -> None:
    grid = Grid.latlon((0.0, 20.0, 0.0, 20.0), 0.01)  # 2000 x 2000
    data = np.ones((4, 2000, 2000), dtype="float32")
    data[:, ::2, :] = np.nan
    ds = with_grid(xr.Dataset({"t2m": (("time", "y", "x"), data)},
                              coords={"time": pd.date_range("2020-01-01", periods=4)}), grid)
    ds["t2m"].attrs["units"] = "K"
    store = write_zarr(ds, tmp_path / "big.zarr", chunks={"time": 1, "y": 500, "x": 500})
    del ds, data
    tracemalloc.start()
    info = describe(store)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info["variables"][0]["nan_fraction"] == pytest.approx(0.5)
    assert peak < 0.25 * 4 * 2000 * 2000 * 4  # far below the 64 MB of the whole array


def test_describe__station_tables(tmp_path: Path) -> None:
    stations = pd.DataFrame({"station_id": ["A", "B"], "network": ["NET", "NET"], "lat": [31.0, 32.5],
                             "lon": [101.0, 100.5], "elevation": [500.0, 800.0]})
    obs = pd.DataFrame({
        "station_id": ["A", "A", "A", "B"],
        "time": pd.to_datetime(["2019-03-01 00:00", "2019-03-01 01:00", "2019-03-02 00:00", "2019-03-05 00:00"]),
        "depth_from": [0.0, 0.0, 0.0, 10.0], "depth_to": [5.0, 5.0, 5.0, 10.0],
        "variable": ["sm", "sm", "sm", "st"], "value": [0.21, 0.22, 0.3, 280.0], "flag": ["G", "G", "D01", "G"],
    })
    data = StationData(stations, obs)
    write_stations(data, tmp_path / "pq", format="parquet")
    write_stations(data, tmp_path / "csv", format="csv")
    for path in (tmp_path / "pq/observations.parquet", tmp_path / "csv/observations.csv"):
        info = describe(path)
        assert info["kind"] == "station-table" and info["rows"] == 4
        a = next(s for s in info["stations"] if s["station_id"] == "A")
        assert a["records"] == 3 and a["flags"] == {"D01": 1, "G": 2} and a["variable"] == "sm"
        assert (a["start"], a["end"]) == ("2019-03-01", "2019-03-02")
        assert (a["lat"], a["lon"]) == (31.0, 101.0)  # from the stations table beside it
    folder = describe(tmp_path / "pq")
    b = next(s for s in folder["stations"] if s["station_id"] == "B")
    assert (b["lat"], b["lon"], b["depth_from"]) == (32.5, 100.5, 10.0)
    assert folder["extent"] == {"west": 100.5, "east": 101.0, "south": 31.0, "north": 32.5,
                                "extent_of": "station locations"}
    meta = describe(tmp_path / "csv/stations.csv")
    assert meta["attributes"]["networks"] == "NET" and len(meta["stations"]) == 2


def test_describe__unknown_format_lists_supported_kinds(tmp_path: Path) -> None:
    odd = tmp_path / "blob.bin"
    odd.write_bytes(b"\x00\x01\x02binary-not-a-raster" * 20)
    with pytest.raises(UnsupportedFileError, match="supported kinds: NetCDF/HDF5"):
        describe(odd)
    with pytest.raises(FileNotFoundError):
        describe(tmp_path / "missing.nc")
    grib = tmp_path / "t2m.grib"
    grib.write_bytes(b"GRIB")
    index = tmp_path / "t2m.grib.5b7b6.idx"
    index.write_bytes(b"\x80\x04binary")
    assert describe(index)["sidecar_of"] == "t2m.grib"
    (tmp_path / "plain").mkdir()
    with pytest.raises(UnsupportedFileError, match="neither a Zarr store"):
        describe(tmp_path / "plain")


def test_describe__netcdf_point_list_and_no_nan(tmp_path: Path) -> None:
    ds = xr.Dataset({"latitude": ("index", np.array([10.0, 11.0, 12.0])),
                     "longitude": ("index", np.array([20.0, 22.0, 21.0])),
                     "soil_moisture": ("index", np.array([0.1, np.nan, 0.3]))})
    path = tmp_path / "Somewhere_2022-05-06.nc"
    ds.to_netcdf(path)
    info = describe(path)
    assert info["points"] == 3 and info["time"]["start"] == "2022-05-06"
    e = info["extent"]
    assert (e["west"], e["east"], e["south"], e["north"], e["extent_of"]) == (20.0, 22.0, 10.0, 12.0, "points")
    sm = next(v for v in info["variables"] if v["name"] == "soil_moisture")
    assert sm["nan_fraction"] == pytest.approx(1 / 3)
    assert describe(path, nan_fraction=False)["variables"][0]["nan_fraction"] is None
