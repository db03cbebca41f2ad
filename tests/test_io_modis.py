"""Tests of the MODIS reader and QC screening (soilfuse.io.products.modis)."""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine
from pyhdf.SD import SD, SDC
from pyproj import CRS, Transformer

from soilfuse.exceptions import DataError, GridError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.io.products.modis import (
    MODIS_SINUSOIDAL,
    decode_sds,
    layer_from_name,
    modis_date,
    parse_struct_metadata,
    qc_good,
    read_modis,
)

MOD11A1 = "modis/MOD11A1.A2021227.h11v05.061.2021228105320.hdf"
MOD13A2 = "modis/MOD13A2.A2021225.h11v06.061.2021320163717.hdf"
MOD09GA = "modis/MOD09GA.A2008296.h14v17.006.2015181011753.hdf"
MOD09A1 = "modis/MOD09A1.A2017193.h18v04.006.2017202035302_subset.hdf"
MOD11B2 = "modis/MOD11B2.A2017001.h14v04.006.2017013155631.hdf"


def _raw(path: Path, sds: str) -> np.ndarray:
    sd = SD(str(path), SDC.READ)
    try:
        return np.asarray(sd.select(sds)[:])
    finally:
        sd.end()


# ---------------------------------------------------------------------- QC bits
def test_qc_good__mod11_mandatory_bits() -> None:
    qc = np.array([0b0000_0000, 0b0000_0001, 0b0000_0010, 0b0000_0011, 0b0100_0100, 0b1000_0001],
                  dtype="uint8")
    assert qc_good(qc, "MOD11A1").tolist() == [True, False, False, False, True, False]


def test_qc_good__mod13_vi_quality_bits() -> None:
    qc = np.array([0, 1, 2, 3, 0b1000_1000_0000_0100, 0xFFFF], dtype="uint16")
    assert qc_good(qc, "MYD13A2").tolist() == [True, False, False, False, True, False]


def test_qc_good__mod09_cloud_state_bits() -> None:
    # clear, cloudy, mixed, not set (assumed clear), clear with shadow bit 2, fill
    qc = np.array([0b00, 0b01, 0b10, 0b11, 0b100, 0xFFFF], dtype="uint16")
    assert qc_good(qc, "MOD09").tolist() == [True, False, False, True, True, False]


def test_qc_good__lazy_dataarray_and_float_nan() -> None:
    qc = xr.DataArray(dsa.from_array(np.array([[0.0, 1.0], [np.nan, 64.0]]), chunks=1), dims=("y", "x"))
    good = qc_good(qc, "MOD11")
    assert isinstance(good.data, dsa.Array)
    assert good.values.tolist() == [[True, False], [False, True]]
    with pytest.raises(DataError, match="No QC rule"):
        qc_good(np.zeros(2, "uint8"), "VNP21")


def test_decode_sds__conventions_fill_and_range() -> None:
    raw = np.array([0, 100, 200, 300], dtype="int16")
    cf = decode_sds(raw, fill=0, valid_range=(0, 250), scale=0.5, offset=10.0, convention="cf")
    hdf4 = decode_sds(raw, fill=0, valid_range=None, scale=0.5, offset=10.0, convention="hdf4")
    assert np.isnan(cf[0]) and cf[1] == 60.0 and cf[2] == 110.0 and np.isnan(cf[3])
    assert np.isnan(hdf4[0]) and hdf4[1] == 45.0 and hdf4[3] == 145.0


def test_modis_date_and_layer_from_name() -> None:
    assert modis_date("MOD13A2.A2021225.h11v06.061.2021320163717.hdf") == pd.Timestamp("2021-08-13")
    assert modis_date("MOD13A1_NDVI_2016_353.tif") == pd.Timestamp("2016-12-18")
    assert modis_date("lst_2020-03-04.tif") == pd.Timestamp("2020-03-04")
    with pytest.raises(DataError, match="No date"):
        modis_date("MOD11A1_LST_Day_1km.tif")
    assert layer_from_name("MOD11A1_LST_Night_1km_2020") == "lst_night"
    assert layer_from_name("MOD13A2_EVI_2019") == "evi"
    assert layer_from_name("MCD15A2H_Lai_500m_2019") == "lai"
    assert layer_from_name("MOD09GA_state_1km_2019") == "qc_state"


# ---------------------------------------------------------------------- HDF4 tiles
def test_parse_struct_metadata__mod11a1_grid(real_data: Path) -> None:
    sd = SD(str(real_data / MOD11A1), SDC.READ)
    text = sd.attributes()["StructMetadata.0"]
    sd.end()
    grids = parse_struct_metadata(text)
    grid = grids["MODIS_Grid_Daily_1km_LST"]
    assert grid.shape == (1200, 1200)
    west, east, south, north = grid.bounds
    assert (west, north) == pytest.approx((-7783653.638366, 4447802.079066), abs=1e-6)
    assert (east, south) == pytest.approx((-6671703.118599, 3335851.559300), abs=1e-6)
    assert grid.resolution[0] == pytest.approx(926.6254331, rel=1e-9)
    assert grid.crs.equals(CRS.from_proj4(MODIS_SINUSOIDAL))
    _, lat = grid.lonlat()
    assert 30.0 < lat.min() < lat.max() < 40.0  # tile v05 spans 30-40 N


def test_read_modis__mod11a1_lst_equals_raw_times_scale(real_data: Path) -> None:
    path = real_data / MOD11A1
    raw = _raw(path, "LST_Day_1km")
    qc = _raw(path, "QC_Day")
    ds = read_modis(path, qc="any")
    assert ds.sizes == {"time": 1, "y": 1200, "x": 1200}
    assert ds["time"].values[0] == np.datetime64("2021-08-15")
    assert ds["lst_day"].attrs["units"] == "K"
    rows, cols = np.nonzero(raw > 0)
    for i in (0, len(rows) // 2, len(rows) - 1):
        r, c = rows[i], cols[i]
        assert float(ds["lst_day"][0, r, c]) == pytest.approx(raw[r, c] * 0.02, abs=1e-4)
    assert int(ds["lst_day"].count()) == int((raw > 0).sum()) == 63129
    np.testing.assert_array_equal(ds["qc_day"].values[0], qc)
    screened = read_modis(path, layers=["lst_day"])
    expected_good = (raw > 0) & ((qc & 0b11) == 0)
    assert int(screened["lst_day"].count()) == int(expected_good.sum()) == 40077
    assert set(screened.data_vars) == {"lst_day", "qc_day", "qc_night"}
    # view time is hours of local solar time (stored x 0.1)
    vt = _raw(path, "Day_view_time")
    r, c = rows[0], cols[0]
    assert float(ds["view_time_day"][0, r, c]) == pytest.approx(vt[r, c] * 0.1, abs=1e-5)


def test_read_modis__lazy_equals_eager(real_data: Path) -> None:
    path = real_data / MOD11A1
    eager = read_modis(path, layers=["lst_night"])
    lazy = read_modis(path, layers=["lst_night"], chunks={"y": 500, "x": 700})
    assert isinstance(lazy["lst_night"].data, dsa.Array)
    assert lazy["lst_night"].chunks[1:] == ((500, 500, 200), (700, 500))
    np.testing.assert_array_equal(lazy["lst_night"].values, eager["lst_night"].values)


def test_read_modis__mod13a2_reciprocal_scale(real_data: Path) -> None:
    path = real_data / MOD13A2
    ndvi = _raw(path, "1 km 16 days NDVI")
    nir = _raw(path, "1 km 16 days NIR reflectance")
    ds = read_modis(path, qc="any")
    assert ds["ndvi"].attrs["scaling"].startswith("(stored - offset) * scale with scale=0.0001")
    rows, cols = np.nonzero(ndvi > 5000)
    r, c = rows[0], cols[0]
    assert float(ds["ndvi"][0, r, c]) == pytest.approx(ndvi[r, c] / 10000.0, abs=1e-6)
    assert float(ds["refl_b2"][0, r, c]) == pytest.approx(nir[r, c] / 10000.0, abs=1e-6)
    assert int(ds["ndvi"].count()) == int((ndvi != -3000).sum())
    assert {"evi", "refl_b1", "refl_b3", "refl_b7", "qc_vi", "pixel_reliability"} <= set(ds.data_vars)


def test_read_modis__mod09ga_state_repeated_to_500m(real_data: Path) -> None:
    path = real_data / MOD09GA
    state = _raw(path, "state_1km_1")
    b1 = _raw(path, "sur_refl_b01_1")
    ds = read_modis(path, layers=["refl_b1"], qc="any")
    assert ds.sizes["y"] == ds.sizes["x"] == 2400
    np.testing.assert_array_equal(ds["qc_state"].values[0, ::2, ::2], state)
    np.testing.assert_array_equal(ds["qc_state"].values[0, 1::2, 1::2], state)
    rows, cols = np.nonzero(b1 != -28672)
    r, c = rows[0], cols[0]
    assert float(ds["refl_b1"][0, r, c]) == pytest.approx(b1[r, c] * 1e-4, abs=1e-6)
    screened = read_modis(path, layers=["refl_b1"])
    good = qc_good(np.repeat(np.repeat(state, 2, 0), 2, 1), "MOD09") & (b1 != -28672)
    assert int(screened["refl_b1"].count()) == int(good.sum())


def test_read_modis__mod09a1_subset_grid_and_values(real_data: Path) -> None:
    path = real_data / MOD09A1
    ds = read_modis(path, qc="any")
    grid = Grid.from_dataset(ds)
    assert grid.shape == (73, 66)
    assert grid.bounds == pytest.approx((753346.477074, 783925.116365, 5098293.132672, 5132114.960978),
                                        abs=1e-5)
    raw = _raw(path, "sur_refl_b07")
    assert float(ds["refl_b7"][0, 10, 20]) == pytest.approx(raw[10, 20] * 1e-4, abs=1e-6)
    # the subset lies around Lake Como / Lecco (about 45.85-46.15 N, 9.75-10.15 E)
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(
        float(ds["x"].mean()), float(ds["y"].mean()))
    assert 9.7 < lon < 10.2 and 45.8 < lat < 46.2
    assert ds["time"].values[0] == np.datetime64("2017-07-12")


def test_read_modis__mod11b2_6km_and_missing_layer(real_data: Path) -> None:
    path = real_data / MOD11B2
    ds = read_modis(path, layers=["lst_night"], qc=None)
    assert list(ds.data_vars) == ["lst_night"]
    assert ds.sizes == {"time": 1, "y": 200, "x": 200}
    raw = _raw(path, "LST_Night_6km")
    assert int(ds["lst_night"].count()) == int((raw > 0).sum())
    with pytest.raises(MissingVariableError, match="ndvi"):
        read_modis(path, layers=["ndvi"])


# ---------------------------------------------------------------------- GeoTIFF exports
def test_read_modis__ndvi_geotiff_series(real_data: Path) -> None:
    folder = real_data / "modis/mod13a1_ndvi_2016_subset"
    ds = read_modis(folder, qc=None)
    assert ds.sizes == {"time": 23, "y": 122, "x": 65}
    times = pd.DatetimeIndex(ds["time"].values)
    assert times[0] == pd.Timestamp("2016-01-01") and times[-1] == pd.Timestamp("2016-12-18")
    assert (np.diff(times.day_of_year) == 16).all()
    with rasterio.open(folder / "MOD13A1_NDVI_2016_129.tif") as src:
        raw = src.read(1)
    k = list(times).index(pd.Timestamp("2016-05-08"))
    assert float(ds["ndvi"][k, 60, 30]) == pytest.approx(raw[60, 30] * 1e-4, abs=1e-6)
    assert float(np.nanmin(ds["ndvi"].values)) == pytest.approx(-0.2, abs=1e-6)


def _write_stack(path: Path, data: np.ndarray, dates: list[str], *, dtype: str, nodata: float | None,
                 tags: dict[str, str]) -> None:
    transform = Affine(926.625433, 0.0, 1.0e6, 0.0, -926.625433, 4.0e6)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=dtype, crs=CRS.from_proj4(MODIS_SINUSOIDAL).to_wkt(),
                       transform=transform, nodata=nodata) as dst:
        dst.write(data.astype(dtype))
        for i, d in enumerate(dates, start=1):
            dst.set_band_description(i, d)
        dst.update_tags(**tags)


def test_read_modis__twin_style_stacks_with_qc(tmp_path: Path) -> None:
    dates = ["2020-07-01", "2020-07-02", "2020-07-03"]
    lst = np.full((3, 4, 5), 15000, dtype="uint16")  # 300 K
    lst[0, 0, 0] = 0  # nodata
    lst[1, 2, 3] = 14000  # 280 K, but QC says cloudy
    qc = np.zeros((3, 4, 5), dtype="uint8")
    qc[1, 2, 3] = 0b10
    qc[2, 1, 1] = 0b0100_0000  # good (bits 0-1 = 00), higher bits set
    _write_stack(tmp_path / "MOD11A1_LST_Day_1km_2020.tif", lst, dates, dtype="uint16", nodata=0,
                 tags={"scale_factor": "0.02"})
    _write_stack(tmp_path / "MOD11A1_QC_Day_2020.tif", qc, dates, dtype="uint8", nodata=None, tags={})
    # an NDVI stack without any scale information: MODIS packing applies (x 0.0001, fill -3000)
    ndvi = np.full((3, 4, 5), 5000, dtype="int16")
    ndvi[2, 3, 4] = -3000
    _write_stack(tmp_path / "MOD13A2_NDVI_2020.tif", ndvi, dates, dtype="int16", nodata=None, tags={})

    ds = read_modis([tmp_path / "MOD11A1_LST_Day_1km_2020.tif", tmp_path / "MOD11A1_QC_Day_2020.tif"],
                    qc="any")
    assert ds["time"].values.tolist() == pd.DatetimeIndex(dates).as_unit("ns").asi8.tolist()
    assert float(ds["lst_day"][0, 1, 1]) == pytest.approx(300.0)
    assert np.isnan(float(ds["lst_day"][0, 0, 0]))
    assert float(ds["lst_day"][1, 2, 3]) == pytest.approx(280.0)
    good = read_modis(tmp_path / "MOD11A1_*.tif")
    assert np.isnan(float(good["lst_day"][1, 2, 3]))
    assert float(good["lst_day"][2, 1, 1]) == pytest.approx(300.0)
    assert int(good["lst_day"].count()) == 3 * 20 - 2
    vi = read_modis(tmp_path / "MOD13A2_NDVI_2020.tif", qc=None)
    assert float(vi["ndvi"][0, 0, 0]) == pytest.approx(0.5)
    assert np.isnan(float(vi["ndvi"][2, 3, 4]))
    assert "MODIS packing" in vi["ndvi"].attrs["scaling"]


def test_read_modis__hdf_dates_stack_and_tiles_must_match(real_data: Path, tmp_path: Path) -> None:
    src = real_data / MOD11B2
    later = tmp_path / "MOD11B2.A2017009.h14v04.006.2017013155631.hdf"
    later.write_bytes(src.read_bytes())
    ds = read_modis([later, src], layers=["lst_day"], qc=None, chunks={"y": 100, "x": 100, "time": 1})
    assert ds["time"].values.tolist() == pd.DatetimeIndex(["2017-01-01", "2017-01-09"]).as_unit("ns").asi8.tolist()
    assert ds["lst_day"].chunks == ((1, 1), (100, 100), (100, 100))
    np.testing.assert_array_equal(ds["lst_day"][0].values, ds["lst_day"][1].values)
    with pytest.raises(GridError, match="different grids"):
        read_modis([src, real_data / MOD11A1], layers=["lst_day"], qc=None)
    with pytest.raises(DataError, match="qc must be"):
        read_modis(src, qc="best")  # type: ignore[arg-type]
