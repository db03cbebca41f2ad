"""Tests of the SMAP point-list reader (soilfuse.io.products.smap)."""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import Transformer

from soilfuse.exceptions import DataError, MissingVariableError, UnitsError
from soilfuse.grid import Grid
from soilfuse.io.products.smap import (
    detect_ease_resolution,
    points_to_cube,
    read_ease_land_points,
    read_smap,
    smap_file_dates,
    smap_points,
)

_EASE36 = 36032.220840584
_X0, _Y0 = -17367530.445161372, 7314540.830638504


def _ease_cell(lon: float, lat: float, size: float) -> tuple[int, int]:
    """Row/col of the EASE-Grid 2.0 cell holding a point, computed independently."""
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True).transform(lon, lat)
    return int((_Y0 - y) // size), int((x - _X0) // size)


def _write_points(path: Path, lat: list[float], lon: list[float], sm: list[float],
                  units: str | None = None) -> None:
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("index", len(lat))
        for name, vals in (("latitude", lat), ("longitude", lon), ("soil_moisture", sm),
                           ("soil_moisture_dca", sm)):
            var = nc.createVariable(name, "f4", ("index",))
            var[:] = np.asarray(vals, dtype="float32")
            if units is not None and name.startswith("soil"):
                var.units = units


def _ease36_centre(row: int, col: int) -> tuple[float, float]:
    x = _X0 + (col + 0.5) * _EASE36
    y = _Y0 - (row + 0.5) * _EASE36
    lon, lat = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True).transform(x, y)
    return float(lon), float(lat)


def test_smap_file_dates__all_name_patterns() -> None:
    assert smap_file_dates("SMAP_20180801_20180803.nc") == (
        pd.Timestamp("2018-08-01"), pd.Timestamp("2018-08-03"))
    assert smap_file_dates("Western-Australia_2020-01-29.nc") == (
        pd.Timestamp("2020-01-29"), pd.Timestamp("2020-01-29"))
    assert smap_file_dates("SMAP_Texas_2024-03-01_Texas2.nc")[0] == pd.Timestamp("2024-03-01")
    assert smap_file_dates("Twin_20210105.nc")[1] == pd.Timestamp("2021-01-05")
    with pytest.raises(DataError, match="Cannot find a date"):
        smap_file_dates("smap_points.nc")
    with pytest.raises(DataError, match="not a valid calendar date"):
        smap_file_dates("Region_2020-02-31.nc")


def test_points_to_cube__averages_duplicates_and_ignores_outside() -> None:
    t = np.array([0, 0, 0, 1, 2])
    r = np.array([1, 1, 0, 0, 5])  # last point outside the grid
    c = np.array([2, 2, 0, 1, 0])
    v = np.array([0.10, 0.30, 0.25, np.nan, 0.4])
    cube = points_to_cube(t, r, c, v, (3, 2, 3))
    assert cube.dtype == np.float32
    assert cube[0, 1, 2] == pytest.approx(0.20)
    assert cube[0, 0, 0] == pytest.approx(0.25)
    assert np.isnan(cube[1]).all() and np.isnan(cube[2]).all()
    assert int(np.isfinite(cube).sum()) == 2


def test_detect_ease_resolution__real_36km_and_9km(real_data: Path) -> None:
    for folder, expected in (("western_australia_36km_2020-01", "36km"),
                             ("western_australia_9km_2020-01", "9km")):
        ds = xr.open_dataset(real_data / "smap_l3" / folder / "Western-Australia_2020-01-01.nc")
        assert detect_ease_resolution(ds["longitude"].values, ds["latitude"].values) == expected
    lon, lat = _ease36_centre(100, 500)  # a single point: only centre alignment can decide
    assert detect_ease_resolution([lon], [lat]) == "36km"
    # off-centre points (shifted by 0.3 cell) fall back to the 9,008 m spacing
    to_ll = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True)
    xs = _X0 + (np.arange(4) + 0.8) * 9008.055210146 + 2000 * 9008.055210146
    lon_j, lat_j = to_ll.transform(xs, np.full(4, 1.0e6))
    assert detect_ease_resolution(lon_j, lat_j) == "9km"
    with pytest.raises(DataError, match="lie on no EASE-Grid"):
        detect_ease_resolution([10.0, 10.05], [45.0, 45.0])


def test_read_smap__cell_value_equals_raw_point(real_data: Path) -> None:
    path = real_data / "smap_l3/western_australia_36km_2020-01/Western-Australia_2020-01-05.nc"
    raw = xr.open_dataset(path)
    lat = raw["latitude"].values.astype("f8")
    lon = raw["longitude"].values.astype("f8")
    sm = raw["soil_moisture"].values.astype("f8")
    ds = read_smap([path])
    assert ds["sm"].attrs["units"] == "m3 m-3"
    assert ds.sizes["time"] == 1 and ds["time"].values[0] == np.datetime64("2020-01-05")
    grid = Grid.ease2("36km")
    x0_col = round((float(ds["x"][0]) - grid.transform.c) / _EASE36 - 0.5)
    y0_row = round((grid.transform.f - float(ds["y"][0])) / _EASE36 - 0.5)
    checked = 0
    for i in range(0, lat.size, 7):
        row, col = _ease_cell(lon[i], lat[i], _EASE36)
        same_cell = [j for j in range(lat.size) if _ease_cell(lon[j], lat[j], _EASE36) == (row, col)]
        expected = float(np.mean(sm[same_cell]))
        got = float(ds["sm"].isel(time=0, y=row - y0_row, x=col - x0_col))
        assert got == pytest.approx(expected, rel=1e-6)
        checked += 1
    assert checked >= 5
    # the output grid is exactly the EASE-Grid 2.0 subset spanned by the points
    sub = Grid.from_dataset(ds)
    assert sub.nests_in(grid) and sub.resolution == pytest.approx((_EASE36, _EASE36))


def test_read_smap__empty_file_gives_all_nan_day(real_data: Path) -> None:
    folder = real_data / "smap_l3/western_australia_9km_2020-01"
    ds = read_smap(folder)
    assert ds.sizes["time"] == 31
    day = ds["sm"].sel(time="2020-01-29")
    assert int(day.count()) == 0
    assert int(ds["sm"].sel(time="2020-01-01").count()) > 3000
    assert ds["x"].diff("x").values == pytest.approx(9008.055210146)
    assert "time_bnds" not in ds.coords


def test_read_smap__window_files_label_first_day_with_bounds(real_data: Path) -> None:
    folder = real_data / "smap_l3/murrumbidgee_36km_weekly_2018-08_2020-07"
    ds = read_smap(folder)
    assert ds.sizes["time"] == 103
    assert ds["time"].values[0] == np.datetime64("2018-08-01")
    assert ds["time_bnds"].values[0].tolist() == [
        np.datetime64("2018-08-01", "ns").astype(int), np.datetime64("2018-08-04", "ns").astype(int)]
    # SMAP_20181031_20181102.nc crosses a month: bounds follow the (correct) name
    step = ds["time_bnds"].sel(time="2018-10-31").values
    assert step[1] == np.datetime64("2018-11-03")
    # the empty window 2019-06-24 is an all-NaN step
    assert int(ds["sm"].sel(time="2019-06-24").count()) == 0
    raw = xr.open_dataset(folder / "SMAP_20180801_20180803.nc")
    lat, lon = raw["latitude"].values.astype("f8"), raw["longitude"].values.astype("f8")
    sm = raw["soil_moisture"].values.astype("f8")
    row, col = _ease_cell(lon[0], lat[0], _EASE36)
    cells = np.array([_ease_cell(a, b, _EASE36) for a, b in zip(lon, lat, strict=True)])
    expected = sm[(cells[:, 0] == row) & (cells[:, 1] == col)].mean()
    x = _X0 + (col + 0.5) * _EASE36
    y = _Y0 - (row + 0.5) * _EASE36
    got = float(ds["sm"].isel(time=0).sel(x=x, y=y, method="nearest", tolerance=1.0))
    assert got == pytest.approx(expected, rel=1e-6)


def test_read_smap__lazy_equals_eager(real_data: Path) -> None:
    folder = real_data / "smap_l3/western_australia_36km_2020-01"
    eager = read_smap(folder)
    lazy = read_smap(folder, chunks={"time": 7, "y": 5, "x": 6})
    assert isinstance(lazy["sm"].data, dsa.Array)
    assert lazy["sm"].chunks[0] == (7, 7, 7, 7, 3)
    np.testing.assert_array_equal(lazy["sm"].values, eager["sm"].values)


def test_read_smap__region_and_dca(real_data: Path) -> None:
    folder = real_data / "smap_l3/western_australia_36km_2020-01"
    region = (118.0, 120.0, -30.0, -28.0)
    ds = read_smap(folder, region=region, variable="soil_moisture_dca")
    rows, cols = Grid.ease2("36km").window(region)
    assert ds.sizes["y"] == rows.stop - rows.start and ds.sizes["x"] == cols.stop - cols.start
    assert ds["sm"].attrs["source_name"] == "soil_moisture_dca"
    with pytest.raises(MissingVariableError, match="variable must be one of"):
        read_smap(folder, variable="sm")


def test_smap_points__tidy_table(real_data: Path) -> None:
    table = smap_points(real_data / "smap_l3/texas_36km_2024")
    assert list(table.columns) == ["date", "date_end", "lat", "lon", "row", "col", "value", "file"]
    raw = xr.open_dataset(real_data / "smap_l3/texas_36km_2024/SMAP_Texas_2024-09-01.nc")
    day = table[table["date"] == pd.Timestamp("2024-09-01")]
    assert len(day) == raw.sizes["index"] == 176
    row, col = _ease_cell(float(day["lon"].iloc[3]), float(day["lat"].iloc[3]), _EASE36)
    assert (int(day["row"].iloc[3]), int(day["col"].iloc[3])) == (row, col)
    assert day["value"].to_numpy() == pytest.approx(raw["soil_moisture"].values, rel=1e-6)
    # the empty file of 2024-03-01 adds no rows
    assert not (table["date"] == pd.Timestamp("2024-03-01")).any()


def test_read_smap__twin_style_files_with_fill(tmp_path: Path) -> None:
    lon_a, lat_a = _ease36_centre(100, 500)
    lon_b, lat_b = _ease36_centre(101, 502)
    _write_points(tmp_path / "Plateau_2021-07-01.nc", [lat_a, lat_a, lat_b], [lon_a, lon_a, lon_b],
                  [0.20, 0.30, -9999.0])
    _write_points(tmp_path / "Plateau_2021-07-02.nc", [lat_b], [lon_b], [0.11])
    ds = read_smap(tmp_path)
    assert ds.sizes == {"time": 2, "y": 2, "x": 3}
    assert float(ds["sm"][0, 0, 0]) == pytest.approx(0.25)  # AM+PM mean
    assert np.isnan(float(ds["sm"][0, 1, 2]))  # -9999 fill dropped
    assert float(ds["sm"][1, 1, 2]) == pytest.approx(0.11)
    assert int(ds["sm"].count()) == 2


def test_read_smap__all_empty_needs_grid(tmp_path: Path, real_data: Path) -> None:
    empty = real_data / "smap_l3/western_australia_9km_2020-01/Western-Australia_2020-01-29.nc"
    with pytest.raises(DataError, match="pass grid="):
        read_smap([empty])
    ds = read_smap([empty], grid="9km", region=(116.0, 117.0, -32.0, -31.0))
    assert int(ds["sm"].count()) == 0 and ds.sizes["time"] == 1


def test_read_ease_land_points__on_ease36_centres(real_data: Path) -> None:
    table = read_ease_land_points(real_data / "smap_l3/grid/ease36land.nc")
    assert len(table) == 103902
    assert (table["row"] >= 0).all()
    grid = Grid.ease2("36km")
    lon_c, lat_c = grid.lonlat()
    rows, cols = table["row"].to_numpy(), table["col"].to_numpy()
    assert np.abs(lon_c[rows, cols] - table["lon"].to_numpy()).max() < 1e-3
    assert np.abs(lat_c[rows, cols] - table["lat"].to_numpy()).max() < 1e-3
    # one land point per cell
    assert not pd.Series(rows * 10000 + cols).duplicated().any()


def test_read_smap__stated_units_are_checked(tmp_path: Path) -> None:
    lon, lat = _ease36_centre(100, 500)
    _write_points(tmp_path / "Ok_2021-07-01.nc", [lat], [lon], [0.2], units="m3/m3")
    assert float(read_smap(tmp_path / "Ok_2021-07-01.nc")["sm"][0, 0, 0]) == pytest.approx(0.2)
    _write_points(tmp_path / "Pct_2021-07-01.nc", [lat], [lon], [20.0], units="%")
    with pytest.raises(UnitsError, match="declared as 'cm3 cm-3'"):
        read_smap(tmp_path / "Pct_2021-07-01.nc")
