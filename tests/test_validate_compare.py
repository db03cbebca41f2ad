"""Tests of soilfuse.validate.compare: matching a product with stations, tables and figures."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import DataError, MissingVariableError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import depth_coords
from soilfuse.validate import match_product, validate_files, validate_product

GRID = Grid.latlon((100.0, 102.0, 30.0, 32.0), 0.5)  # 4 x 4 cells
TIME = pd.date_range("2020-01-01", "2020-12-31", freq="D")
OFFSET = {"s1": 0.02, "s2": -0.01, "s3": 0.00, "s4": 0.03}  # obs - product, per station
NOISE = {"s1": 0.005, "s2": 0.010, "s3": 0.015, "s4": 0.020}


@dataclass
class StationData:
    """Stand-in for soilfuse.io.stations.StationData: the two tables as attributes."""

    stations: pd.DataFrame
    observations: pd.DataFrame


def _product(chunked: bool = False) -> xr.Dataset:
    t = np.arange(TIME.size)[:, None, None, None]
    d = np.arange(2)[None, :, None, None]
    r = np.arange(4)[None, None, :, None]
    c = np.arange(4)[None, None, None, :]
    sm = 0.2 + 0.05 * np.sin(2 * np.pi * t / 365.0 + r) + 0.02 * d + 0.005 * c
    ds = xr.Dataset({"sm": (("time", "depth", "y", "x"), sm, {"units": "m3 m-3"})}, coords={"time": TIME})
    ds = ds.assign_coords(**depth_coords([0, 5], [5, 15]))
    ds = with_grid(ds, GRID)
    return ds.chunk({"time": 100, "y": 2, "x": 2}) if chunked else ds


STATIONS = pd.DataFrame(
    {
        "station_id": ["s1", "s2", "s3", "s4"],
        "network": "TEST",
        "lat": [31.8, 31.2, 30.6, 30.2],  # rows 0, 1, 2, 3
        "lon": [100.2, 100.7, 101.3, 101.9],  # cols 0, 1, 2, 3
        "elevation": [1000.0, 1200.0, 900.0, 800.0],
        "land_cover": [1, 2, 2, 3],
        "climate_zone": [3, 3, 4, 4],
    }
)


def _observations(product: xr.Dataset) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i, sid in enumerate(STATIONS["station_id"]):
        for depth_idx, (top, bottom) in enumerate(((0, 5), (10, 10))):  # 10 cm point sensor -> 5-15cm layer
            cell = product["sm"].isel(depth=depth_idx, y=i, x=i).values
            value = cell + OFFSET[sid] + rng.normal(0, NOISE[sid], TIME.size)
            rows.append(
                pd.DataFrame(
                    {
                        "station_id": sid,
                        "time": TIME,
                        "depth_from": top,
                        "depth_to": bottom,
                        "variable": "sm",
                        "value": value,
                        "flag": "G",
                    }
                )
            )
        rows.append(
            pd.DataFrame(
                {
                    "station_id": sid,
                    "time": TIME[:30],
                    "depth_from": 30,
                    "depth_to": 30,
                    "variable": "sm",
                    "value": 0.3,
                    "flag": "G",
                }
            )
        )  # no product layer at 30 cm
    obs = pd.concat(rows, ignore_index=True)
    obs.loc[0, ["value", "flag"]] = [5.0, "C03"]  # a flagged spike that must be ignored
    return obs


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    product = _product(chunked=True)
    obs = _observations(_product())
    coarse = (0.5 * _product() + 0.05).assign_coords(_product().coords)
    out = tmp_path_factory.mktemp("validation")
    paths = validate_product(product, StationData(STATIONS, obs), out, variable="sm", coarse=coarse)
    return paths, obs


def test_match_product__pairs_and_depth_matching() -> None:
    product = _product()
    obs = _observations(product)
    pairs = match_product(product, (STATIONS, obs), variable="sm")
    assert set(pairs["layer"]) == {"0-5cm", "5-15cm"}  # the 30 cm sensor has no layer
    assert len(pairs) == 4 * 2 * TIME.size - 1  # minus the flagged value
    s2 = pairs[(pairs["station_id"] == "s2") & (pairs["layer"] == "5-15cm")]
    np.testing.assert_allclose(s2["pred"], product["sm"].isel(depth=1, y=1, x=1).values)
    assert (s2["depth_from"] == 10).all() and (s2["land_cover"] == 2).all()
    mapped = match_product(product, (STATIONS, obs), depth_map={"30cm": "5-15cm"})
    assert set(mapped["depth_from"]) == {30.0}


def test_match_product__errors() -> None:
    product = _product()
    obs = _observations(product)
    with pytest.raises(MissingVariableError, match="'st'"):
        match_product(product, (STATIONS, obs), variable="st")
    surface = product.isel(depth=0, drop=True).drop_vars(["depth_bnds", "layer"], errors="ignore")
    with pytest.raises(DataError, match="product_layer"):
        match_product(surface, (STATIONS, obs))
    pairs = match_product(surface, {"stations": STATIONS, "observations": obs}, product_layer=(0, 5))
    assert set(pairs["layer"]) == {"0-5cm"} and set(pairs["depth_from"]) == {0.0}
    with pytest.raises(DataError, match="observations table"):
        match_product(product, STATIONS)


def test_validate_product__writes_all_tables(validated) -> None:
    paths, _ = validated
    for name in (
        "metrics_overall",
        "metrics_by_layer",
        "metrics_by_season",
        "metrics_by_land_cover",
        "metrics_by_climate_zone",
        "metrics_stations",
        "metrics_stations_season",
    ):
        for fmt in ("csv", "parquet"):
            assert paths[f"tables/{name}.{fmt}"].is_file()
        csv = pd.read_csv(paths[f"tables/{name}.csv"])
        parquet = pd.read_parquet(paths[f"tables/{name}.parquet"])
        assert len(csv) == len(parquet) > 0
        np.testing.assert_allclose(csv["RMSD"], parquet["RMSD"], rtol=1e-12)
    assert paths["tables/pairs.parquet"].is_file()


def test_validate_product__metric_values(validated) -> None:
    paths, obs = validated
    product = _product()
    by_layer = pd.read_parquet(paths["tables/metrics_by_layer.parquet"])
    pooled = by_layer[(by_layer["how"] == "pooled") & (by_layer["layer"] == "0-5cm")].iloc[0]
    good = obs[(obs["depth_from"] == 0) & (obs["flag"] == "G")]
    pred = np.concatenate([product["sm"].isel(depth=0, y=i, x=i).values for i in range(4)])
    diff = pred[1:] - good["value"].to_numpy()  # obs row 0 (s1, first day) is the flagged one
    assert pooled["n_obs"] == diff.size
    assert pooled["BIAS"] == pytest.approx(diff.mean(), abs=1e-12)
    assert pooled["RMSD"] == pytest.approx(np.sqrt(np.mean(diff**2)), abs=1e-12)
    stations = pd.read_csv(paths["tables/metrics_stations.csv"])
    s4 = stations[(stations["station_id"] == "s4") & (stations["layer"] == "5-15cm")].iloc[0]
    # obs = product + 0.03 + N(0, 0.02): bias -0.03, ubRMSE about 0.02
    assert s4["BIAS"] == pytest.approx(-0.03, abs=0.004)
    assert s4["urmsd"] == pytest.approx(0.02, rel=0.15)
    assert (s4["lat"], s4["lon"], s4["land_cover_name"]) == (30.2, 101.9, "cropland")
    # downscaled product = truth + station offset; coarse = damped and shifted: a gain everywhere
    assert (stations["G_down"] > 0).all()
    seasons = pd.read_csv(paths["tables/metrics_by_season.csv"])
    assert set(seasons["season"]) == {"DJF", "MAM", "JJA", "SON"}
    overall = pd.read_csv(paths["tables/metrics_overall.csv"]).set_index("summary")
    assert overall.loc["station_median", "n_obs"] == 8  # 4 stations x 2 layers


def test_validate_product__writes_figures(validated) -> None:
    paths, _ = validated
    figures = {k: v for k, v in paths.items() if k.startswith("figures/")}
    expected = {
        "figures/scatter_0-5cm.png",
        "figures/scatter_5-15cm.png",
        "figures/map_R_0-5cm.png",
        "figures/map_urmsd_5-15cm.png",
        "figures/map_BIAS_0-5cm.png",
        "figures/map_G_down_0-5cm.png",
        "figures/box_season_R.png",
        "figures/box_season_urmsd.png",
        "figures/box_land_cover_R.png",
    }
    assert expected <= set(figures)
    for path in figures.values():
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def test_validate_files__netcdf_product_and_subdaily_station_tables(tmp_path) -> None:
    product = _product().isel(time=slice(0, 40))
    product_path = tmp_path / "product.nc"
    product.to_netcdf(product_path)
    daily = _observations(_product())
    daily = daily[(daily["time"] < TIME[40]) & (daily["depth_from"] < 30) & (daily["flag"] == "G")]
    # two records a day, 0.001 either side of the daily value: the daily mean is unchanged
    hourly = pd.concat(
        [
            daily.assign(time=daily["time"] + pd.Timedelta(hours=h), value=daily["value"] + dv)
            for h, dv in ((0, -0.001), (12, 0.001))
        ],
        ignore_index=True,
    )
    folder = tmp_path / "stations"
    folder.mkdir()
    STATIONS.to_parquet(folder / "stations.parquet", index=False)
    hourly.to_parquet(folder / "observations.parquet", index=False)
    paths = validate_files(product_path, folder, tmp_path / "out", variable="sm", figures=False, min_obs=5)
    assert not any(k.startswith("figures/") for k in paths)
    pairs = pd.read_parquet(paths["tables/pairs.parquet"])
    assert len(pairs) == len(daily)
    merged = pairs.merge(daily, on=["station_id", "time", "depth_from", "depth_to"])
    np.testing.assert_allclose(merged["obs"], merged["value"], atol=1e-12)
    by_layer = pd.read_csv(paths["tables/metrics_by_layer.csv"])
    assert set(by_layer["layer"]) == {"0-5cm", "5-15cm"}
