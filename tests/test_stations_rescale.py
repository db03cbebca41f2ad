"""Tests of the rescaling methods and of rescaling station layers to a gridded reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from soilfuse.exceptions import DataError
from soilfuse.grid import Grid
from soilfuse.io.canonical import with_grid
from soilfuse.io.cf import depth_coords
from soilfuse.stations import (
    RESCALING_METHODS,
    cdf_match,
    get_rescaling_method,
    linear_variance_scaling,
    mean_std,
    reference_layer_for,
    rescale_to_reference,
)


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    src = rng.gamma(2.0, 0.05, 400)
    ref = 0.1 + 0.3 * rng.beta(2.0, 5.0, 400)
    src[[5, 50]] = np.nan
    ref[[7, 70, 71]] = np.nan
    return src, ref


@pytest.mark.parametrize("name", sorted(RESCALING_METHODS))
def test_rescaling_methods__registry_output_contract(name: str, pair) -> None:
    src, ref = pair
    out = get_rescaling_method(name)(src, ref)
    assert out.shape == src.shape
    assert np.array_equal(np.isnan(out), np.isnan(src))
    valid = np.isfinite(src)
    order = np.argsort(src[valid])
    assert np.all(np.diff(out[valid][order]) > 0)  # strictly increasing in src
    both = np.isfinite(src) & np.isfinite(ref)
    assert out[both].mean() == pytest.approx(ref[both].mean(), abs=2e-3)


@pytest.mark.parametrize("func", [mean_std, linear_variance_scaling])
def test_moment_matching__moments_match_reference_to_1e10(func, pair) -> None:
    src, ref = pair
    out = func(src, ref)
    both = np.isfinite(src) & np.isfinite(ref)
    assert abs(out[both].mean() - ref[both].mean()) < 1e-10
    assert abs(out[both].std() - ref[both].std()) < 1e-10


def test_linear_variance_scaling__equals_mean_std(pair) -> None:
    src, ref = pair
    np.testing.assert_allclose(linear_variance_scaling(src, ref), mean_std(src, ref), rtol=0, atol=1e-14)


def test_mean_std__agrees_with_pytesmo(pair) -> None:
    from pytesmo.scaling import mean_std as pytesmo_mean_std

    src, ref = pair
    both = np.isfinite(src) & np.isfinite(ref)
    ours = mean_std(src[both], ref[both])
    np.testing.assert_allclose(ours, pytesmo_mean_std(src[both], ref[both]), rtol=0, atol=1e-14)


@pytest.mark.parametrize("decimals", [None, 2])
def test_cdf_match__agrees_with_pytesmo_including_ties(pair, decimals) -> None:
    from pytesmo.cdf_matching import CDFMatching

    src, ref = pair
    if decimals is not None:
        src = np.round(src, decimals)  # many tied percentiles
    matcher = CDFMatching(nbins=100, linear_edge_scaling=False, minobs=None, combine_invalid=True).fit(src, ref)
    np.testing.assert_allclose(cdf_match(src, ref, nbins=100), matcher.predict(src), rtol=0, atol=1e-12)


def test_cdf_match__ties_give_a_strictly_increasing_map() -> None:
    src = np.repeat([0.1, 0.2, 0.3, 0.4], 25).astype(float)  # four values only
    ref = np.linspace(0.05, 0.45, 100)
    out = cdf_match(src, ref, nbins=10)
    levels = [out[src == v][0] for v in (0.1, 0.2, 0.3, 0.4)]
    assert np.all(np.diff(levels) > 0)
    # the quartile steps land on the reference's quartiles (Hazen positions)
    assert levels[0] == pytest.approx(0.05)
    assert levels[-1] == pytest.approx(0.45)
    # values beyond the knots follow the end segments
    beyond = cdf_match(np.r_[src, 0.5], np.r_[ref, np.nan], nbins=10)
    assert beyond[-1] > levels[-1]


def test_rescaling__errors() -> None:
    with pytest.raises(DataError, match="Unknown rescaling method 'zscore'"):
        get_rescaling_method("zscore")
    with pytest.raises(DataError, match="constant"):
        mean_std(np.ones(5), np.arange(5.0))
    with pytest.raises(DataError, match="constant"):
        cdf_match(np.ones(5), np.arange(5.0))
    with pytest.raises(DataError, match="common valid"):
        mean_std(np.array([1.0, np.nan]), np.array([np.nan, 1.0]))
    with pytest.raises(DataError, match="equal length"):
        mean_std(np.ones(3), np.ones(4))


def test_reference_layer_for__seed_001_mapping() -> None:
    era5 = ["0-7cm", "7-28cm", "28-100cm", "100-289cm"]
    layers = [f"{d}-{d + 10}cm" for d in range(0, 100, 10)]
    got = {lab: reference_layer_for(d, d + 10, era5) for lab, d in zip(layers, range(0, 100, 10), strict=True)}
    assert got["10-20cm"] == got["20-30cm"] == "7-28cm"
    assert all(got[f"{d}-{d + 10}cm"] == "28-100cm" for d in range(30, 100, 10))
    assert got["0-10cm"] == "0-7cm"
    assert reference_layer_for(300, 310, era5) is None


def _reference() -> xr.Dataset:
    """An ERA5-Land-like ``sm`` on a 2 x 2 grid with three layers."""
    grid = Grid.latlon((100.0, 101.0, 30.0, 31.0), 0.5)
    time = pd.date_range("2019-03-01", periods=60, freq="D")
    rng = np.random.default_rng(1)
    data = 0.25 + 0.05 * rng.standard_normal((60, 3, 2, 2))
    ds = xr.Dataset({"sm": (("time", "depth", "y", "x"), data, {"units": "m3 m-3"})}, coords={"time": time})
    ds = ds.assign_coords(depth_coords([0, 7, 28], [7, 28, 100]))
    return with_grid(ds, grid)


def test_rescale_to_reference__moments_match_reference_cell_and_layer() -> None:
    ref = _reference()
    stations = pd.DataFrame({"station_id": ["A", "B"], "network": "N", "lat": [30.9, 30.2], "lon": [100.1, 100.8],
                             "elevation": 0.0})
    days = pd.date_range("2019-03-05", periods=50, freq="D")
    rng = np.random.default_rng(2)
    daily = pd.concat([
        pd.DataFrame({"station_id": s, "time": days, "variable": "sm", "layer": layer,
                      "value": 0.4 + 0.1 * rng.standard_normal(50)})
        for s, layer in (("A", "10-20cm"), ("A", "30-40cm"), ("B", "20-30cm"))
    ])
    daily.loc[daily.index[3], "value"] = np.nan
    out = rescale_to_reference(daily, ref, stations, method="mean_std")
    cells = {"A": (0, 0), "B": (1, 1)}
    expected_layer = {"10-20cm": 1, "20-30cm": 1, "30-40cm": 2}
    for (sid, layer), g in out.groupby(["station_id", "layer"]):
        r, c = cells[sid]
        k = expected_layer[layer]
        series = pd.Series(ref["sm"].isel(depth=k, y=r, x=c).values, index=ref["time"].values).reindex(g["time"])
        both = np.isfinite(g["value"].to_numpy()) & np.isfinite(series.to_numpy())
        assert abs(g["value"].to_numpy()[both].mean() - series.to_numpy()[both].mean()) < 1e-10
        assert abs(g["value"].to_numpy()[both].std() - series.to_numpy()[both].std()) < 1e-10
        assert g["reference_layer"].iloc[0] == ["0-7cm", "7-28cm", "28-100cm"][k]
        assert np.isfinite(g["value_raw"]).sum() >= 49
    assert out.attrs["rescale_status"] == []


def test_rescale_to_reference__failures_recorded_or_raised() -> None:
    ref = _reference()
    stations = pd.DataFrame({"station_id": ["A", "Z"], "network": "N", "lat": [30.9, 40.0], "lon": [100.1, 100.8],
                             "elevation": 0.0})
    days = pd.date_range("2019-03-05", periods=50, freq="D")
    daily = pd.concat([
        pd.DataFrame({"station_id": "A", "time": days, "variable": "sm", "depth_from": 10.0, "depth_to": 20.0,
                      "value": np.linspace(0.2, 0.3, 50)}),
        pd.DataFrame({"station_id": "A", "time": days, "variable": "sm", "depth_from": 150.0, "depth_to": 160.0,
                      "value": 0.3}),
        pd.DataFrame({"station_id": "Z", "time": days, "variable": "sm", "depth_from": 10.0, "depth_to": 20.0,
                      "value": 0.3}),
        pd.DataFrame({"station_id": "A", "time": days[:10], "variable": "sm", "depth_from": 30.0,
                      "depth_to": 40.0, "value": np.linspace(0.2, 0.3, 10)}),
    ])
    out = rescale_to_reference(daily, ref, stations, method="cdf_match", nbins=20)
    reasons = {(s["station_id"], s["layer"]): s["reason"] for s in out.attrs["rescale_status"]}
    assert set(reasons) == {("A", "150-160cm"), ("Z", "10-20cm"), ("A", "30-40cm")}
    assert "outside" in reasons[("Z", "10-20cm")] and "10 common days" in reasons[("A", "30-40cm")]
    assert set(out["layer"]) == {"10-20cm"}
    with pytest.raises(DataError, match="'Z'"):
        rescale_to_reference(daily[daily["station_id"] == "Z"], ref, stations, on_error="raise")
    mapped = rescale_to_reference(daily[daily["depth_from"] == 150.0], ref["sm"], stations,
                                  layer_map={"150-160cm": "28-100cm"})
    assert mapped["reference_layer"].unique().tolist() == ["28-100cm"]
