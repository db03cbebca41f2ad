"""Tests of soilfuse.io.cf: ACDD/CF attributes, encodings, chunk choice, depth coordinates."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import Transformer

from soilfuse.exceptions import DataError, GridError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.io import cf
from soilfuse.io.canonical import with_grid


def _ds(grid: Grid, nt: int = 3, freq: str = "D") -> xr.Dataset:
    t = pd.date_range("2020-01-01", periods=nt, freq=freq)
    data = np.zeros((nt, *grid.shape), dtype="float32")
    return with_grid(xr.Dataset({"sm": (("time", "y", "x"), data)}, coords={"time": t}), grid)


def test_acdd_attrs__latlon_extent_and_time_coverage() -> None:
    ds = _ds(Grid.latlon((100.0, 101.5, 30.0, 31.0), 0.25), nt=10)
    attrs = cf.acdd_attrs(ds, title="T", summary="S", source="twin", license="CC0-1.0")
    assert attrs["Conventions"] == "CF-1.10, ACDD-1.3"
    assert (attrs["geospatial_lon_min"], attrs["geospatial_lon_max"]) == (100.0, 101.5)
    assert (attrs["geospatial_lat_min"], attrs["geospatial_lat_max"]) == (30.0, 31.0)
    assert attrs["geospatial_lat_resolution"] == "0.25 degree"
    assert attrs["time_coverage_start"] == "2020-01-01T00:00:00Z"
    assert attrs["time_coverage_end"] == "2020-01-10T00:00:00Z"
    assert attrs["time_coverage_resolution"] == "P1D"
    assert attrs["time_coverage_duration"] == "P9D"
    assert attrs["license"] == "CC0-1.0"  # extra overrides the default
    assert attrs["creator_name"] == "soilfuse"
    assert attrs["keywords"] == "volume_fraction_of_condensed_water_in_soil"
    assert attrs["source"] == "twin"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", attrs["date_created"])
    assert attrs["history"].endswith(f"written by soilfuse {attrs['product_version']}")


def test_acdd_attrs__projected_extent_transformed_to_lonlat() -> None:
    grid = Grid.ease2("36km").slice(slice(50, 60), slice(700, 720))
    attrs = cf.acdd_attrs(_ds(grid), title="T", summary="S", history="made\n")
    # EASE-Grid 2.0 is cylindrical: meridians and parallels are straight, so the box
    # corners give the lon/lat extent exactly.
    west, east, south, north = grid.bounds
    lon, lat = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True).transform(
        [west, east], [south, north]
    )
    assert attrs["geospatial_lon_min"] == pytest.approx(lon[0], abs=1e-9)
    assert attrs["geospatial_lon_max"] == pytest.approx(lon[1], abs=1e-9)
    assert attrs["geospatial_lat_min"] == pytest.approx(lat[0], abs=1e-9)
    assert attrs["geospatial_lat_max"] == pytest.approx(lat[1], abs=1e-9)
    # Hand check: x = a * k0 * lon with k0 = cos(30) / sqrt(1 - e2 sin2(30)) (Snyder 1987,
    # normal cylindrical equal-area on the ellipsoid); column 700 starts at 81.411 E.
    x0 = -17367530.445 + 700 * 36032.22084
    k0 = np.cos(np.deg2rad(30)) / np.sqrt(1 - 0.00669438 * 0.25)
    assert attrs["geospatial_lon_min"] == pytest.approx(np.rad2deg(x0 / (6378137.0 * k0)), abs=1e-4)
    assert attrs["geospatial_lat_resolution"] == "36032.22084 m"
    assert attrs["history"].startswith("made\n")


def test_acdd_attrs__monthly_resolution_and_no_grid_raises() -> None:
    ds = _ds(Grid.latlon((0.0, 1.0, 0.0, 1.0), 0.5), nt=4, freq="MS")
    assert cf.acdd_attrs(ds, title="T", summary="S")["time_coverage_resolution"] == "P1M"
    with pytest.raises(GridError, match="canonicalize"):
        cf.acdd_attrs(xr.Dataset({"a": ("n", [1.0])}), title="T", summary="S")


def test_variable_attrs__canonical_and_prefixed() -> None:
    assert cf.variable_attrs("st")["units"] == "K"
    assert cf.variable_attrs("sm_0_5cm")["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    with pytest.raises(MissingVariableError, match="not a canonical variable"):
        cf.variable_attrs("moisture")


def test_annotate__fills_missing_attrs_keeps_existing_units() -> None:
    ds = _ds(Grid.latlon((0.0, 1.0, 0.0, 1.0), 0.5))
    ds["t2m"] = ds["sm"].assign_attrs(units="degC")
    ds["other"] = ds["sm"].copy()
    out = cf.annotate(ds)
    assert out["sm"].attrs["units"] == "m3 m-3"
    assert out["t2m"].attrs["units"] == "degC"  # never overwritten
    assert out["t2m"].attrs["long_name"] == "2 m air temperature"
    assert "units" not in out["other"].attrs
    assert out["other"].attrs["grid_mapping"] == "spatial_ref"
    assert "units" not in ds["sm"].attrs  # input untouched


@pytest.mark.parametrize(
    ("size", "target", "expected"),
    [(365, 32, 73), (366, 32, 61), (730, 32, 73), (3650, 32, 25), (31, 32, 31), (1000, 512, 500), (367, 32, 23)],
)
def test_choose_chunk__divides_or_pads_least(size: int, target: int, expected: int) -> None:
    chunk = cf.choose_chunk(size, target)
    assert chunk == expected
    padding = (-size) % chunk
    # no length within the search window pads less
    assert padding == min((-size) % c for c in range(max(1, target // 4), min(size, 3 * target) + 1))


def test_encoding_for__dtypes_fill_values_and_chunks() -> None:
    grid = Grid.latlon((0.0, 10.0, 0.0, 10.0), 0.1)
    ds = _ds(grid, nt=365)
    ds["land_cover"] = (("y", "x"), np.ones(grid.shape, dtype="uint8"))
    ds["half"] = (("y", "x"), np.ones(grid.shape, dtype="float16"))
    enc = cf.encoding_for(ds, fmt="netcdf", compression="zlib")
    assert enc["sm"]["chunksizes"] == (73, 100, 100)
    assert np.isnan(enc["sm"]["_FillValue"])
    assert enc["sm"]["zlib"] is True
    assert enc["land_cover"]["_FillValue"] is None
    assert enc["half"]["dtype"] == "float32"
    assert enc["x"]["_FillValue"] is None
    assert enc["time"]["units"] == "days since 1970-01-01"
    zenc = cf.encoding_for(ds, fmt="zarr", chunks={"time": 10, "x": -1})
    assert zenc["sm"]["chunks"] == (10, 100, 100)
    with pytest.raises(DataError, match="positive integer"):
        cf.encoding_for(ds, fmt="zarr", chunks={"time": 0})
    with pytest.raises(DataError, match="compression"):
        cf.encoding_for(ds, fmt="netcdf", compression="gzip")  # type: ignore[arg-type]


def test_encoding_for__hourly_time_units() -> None:
    ds = _ds(Grid.latlon((0.0, 1.0, 0.0, 1.0), 0.5), nt=5, freq="h")
    assert cf.encoding_for(ds, fmt="zarr")["time"]["units"] == "hours since 1970-01-01"


def test_depth_coords__midpoints_bounds_labels() -> None:
    c = cf.depth_coords([0, 5, 15, 30], [5, 15, 30, 60])
    assert c["depth"].values.tolist() == [2.5, 10.0, 22.5, 45.0]
    assert c["depth_bnds"].dims == ("depth", "bnds")
    assert c["depth_bnds"].values[2].tolist() == [15.0, 30.0]
    assert c["layer"].values.tolist() == ["0-5cm", "5-15cm", "15-30cm", "30-60cm"]
    assert c["depth"].attrs["units"] == "cm"
    assert c["depth"].attrs["positive"] == "down"
    assert c["depth"].attrs["bounds"] == "depth_bnds"


def test_depth_coords__point_sensors_and_errors() -> None:
    c = cf.depth_coords([0, 5, 2.5], [0, 5, 2.5])
    assert c["layer"].values.tolist() == ["0cm", "5cm", "2.5cm"]
    assert c["depth"].values.tolist() == [0.0, 5.0, 2.5]
    with pytest.raises(DataError, match="share a midpoint"):
        cf.depth_coords([0, 2], [10, 8])
    with pytest.raises(DataError, match="top <= bottom"):
        cf.depth_coords([10], [5])
    with pytest.raises(DataError, match="equal length"):
        cf.depth_coords([0, 5], [5])


def test_parse_layer__roundtrip_and_invalid() -> None:
    for top, bottom in [(0, 5), (5, 15), (100, 289), (5, 5), (0.5, 2.5)]:
        assert cf.parse_layer(cf.layer_label(top, bottom)) == (top, bottom)
    assert cf.parse_layer(" 10 - 20 cm ") == (10.0, 20.0)
    assert cf.is_layer_label("0-7cm") and not cf.is_layer_label("2020-01-01")
    with pytest.raises(DataError, match="not a layer label"):
        cf.parse_layer("0-5 m")
    with pytest.raises(DataError, match="bottom above its top"):
        cf.parse_layer("20-10cm")
