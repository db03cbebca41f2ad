"""LST mean, DTR, fractional cover and soil evaporative efficiency."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from soilfuse.exceptions import DataError, MissingVariableError, UnitsError
from soilfuse.preprocess import dtr, fractional_cover, lst_mean, soil_evaporative_efficiency


def day_night(day: list[float], night: list[float], night_units: str = "K") -> xr.Dataset:
    return xr.Dataset({
        "lst_day": ("x", np.array(day), {"units": "K"}),
        "lst_night": ("x", np.array(night), {"units": night_units}),
    })


def test_lst_mean__hand_values_and_nan() -> None:
    out = lst_mean(day_night([300.0, 290.0, np.nan], [280.0, 291.0, 280.0]))
    np.testing.assert_allclose(out.values[:2], [290.0, 290.5])
    assert np.isnan(out.values[2])
    assert out.name == "lst_mean" and out.attrs["units"] == "K"


def test_dtr__celsius_night_converted() -> None:
    out = dtr(day_night([300.0, 270.0], [10.0, -5.0], night_units="degC"))
    np.testing.assert_allclose(out.values, [300.0 - 283.15, 270.0 - 268.15])
    assert out.attrs["units"] == "K"


def test_dtr__missing_units_or_variable_raise() -> None:
    ds = day_night([300.0], [280.0])
    del ds["lst_night"].attrs["units"]
    with pytest.raises(UnitsError, match="lst_night"):
        dtr(ds)
    with pytest.raises(MissingVariableError, match="lst_night"):
        lst_mean(ds.drop_vars("lst_night"))


def test_fractional_cover__end_members_and_clip() -> None:
    ndvi = xr.DataArray([0.0, 0.15, 0.525, 0.90, 0.95, np.nan], dims="x")
    out = fractional_cover(ndvi, ndvi_soil=0.15, ndvi_veg=0.90).values
    np.testing.assert_allclose(out[:5], [0.0, 0.0, 0.5, 1.0, 1.0])
    assert np.isnan(out[5])
    with pytest.raises(DataError, match="ndvi_veg"):
        fractional_cover(ndvi, ndvi_soil=0.5, ndvi_veg=0.4)


def trapezoid_window(ts_max: float, ts_min: float, tv: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 9 x 5 window: rows are fv = 0.05 .. 0.85 (one per fv bin), columns SEE = 0, .25, .5, .75, 1.

    LST = fv Tv + (1 - fv) Ts with Ts = Ts_max - SEE (Ts_max - Ts_min), so the dry and
    wet edges are exact straight lines meeting Tv at fv = 1.
    """
    fv = np.repeat(np.arange(0.05, 0.9, 0.1)[:, None], 5, axis=1)
    see = np.repeat(np.linspace(0.0, 1.0, 5)[None, :], 9, axis=0)
    ts = ts_max - see * (ts_max - ts_min)
    return fv, see, fv * tv + (1 - fv) * ts


def test_soil_evaporative_efficiency__recovers_exact_trapezoid() -> None:
    fv, see, lst_a = trapezoid_window(320.0, 295.0, 300.0)
    _, _, lst_b = trapezoid_window(310.0, 290.0, 296.0)  # a second window with other end-members
    lst = xr.DataArray(np.concatenate([lst_a, lst_b], axis=1)[None], dims=("time", "y", "x"), attrs={"units": "K"})
    ndvi = xr.DataArray(0.15 + 0.75 * np.concatenate([fv, fv], axis=1), dims=("y", "x"))
    zones = xr.DataArray(np.repeat([0, 1], 5)[None, :].repeat(9, axis=0), dims=("y", "x"))
    out = soil_evaporative_efficiency(lst, ndvi, zones=zones, quantile=0.0, min_per_bin=1)
    np.testing.assert_allclose(out.values[0], np.concatenate([see, see], axis=1), atol=1e-9)
    assert out.dims == ("time", "y", "x") and out.attrs["units"] == "1"


def test_soil_evaporative_efficiency__clips_and_masks_dense_cover() -> None:
    fv, _, lst = trapezoid_window(320.0, 295.0, 300.0)
    lst = lst.copy()
    lst[0, 0] += 5.0  # hotter than the dry edge; the fit moves but SEE stays in [0, 1]
    fv = fv.copy()
    fv[8, :] = 0.95  # above fv_max: Ts ill-determined
    ndvi = xr.DataArray(0.15 + 0.75 * fv, dims=("y", "x"))
    out = soil_evaporative_efficiency(xr.DataArray(lst, dims=("y", "x"), attrs={"units": "K"}), ndvi,
                                      block=10, quantile=0.0, min_per_bin=1, fv_max=0.9).values
    assert np.isnan(out[8]).all()
    finite = out[np.isfinite(out)]
    assert finite.min() == 0.0 and finite.max() <= 1.0
    assert out[0, 0] == 0.0


def test_soil_evaporative_efficiency__undetermined_window_is_nan() -> None:
    # all pixels in one fv bin: the edges cannot be fitted
    lst = xr.DataArray(np.linspace(290, 310, 16).reshape(4, 4), dims=("y", "x"), attrs={"units": "K"})
    ndvi = xr.DataArray(np.full((4, 4), 0.3), dims=("y", "x"))
    assert np.isnan(soil_evaporative_efficiency(lst, ndvi, block=4).values).all()


def test_soil_evaporative_efficiency__blocks_equal_zones_and_dask() -> None:
    rng = np.random.default_rng(4)
    fv = rng.uniform(0, 0.9, (3, 12, 10))
    ts = rng.uniform(290, 320, (3, 12, 10))
    lst = xr.DataArray(fv * 298 + (1 - fv) * ts, dims=("time", "y", "x"), attrs={"units": "K"})
    ndvi = xr.DataArray(0.15 + 0.75 * fv, dims=("time", "y", "x"))
    by_block = soil_evaporative_efficiency(lst, ndvi, block=6)
    zones = xr.DataArray((np.arange(12)[:, None] // 6) * 2 + np.arange(10)[None, :] // 6, dims=("y", "x"))
    by_zone = soil_evaporative_efficiency(lst, ndvi, zones=zones)
    lazy = soil_evaporative_efficiency(lst.chunk({"time": 2, "y": 5, "x": 3}), ndvi.chunk({"time": 1}), block=6)
    assert lazy.chunks is not None
    np.testing.assert_array_equal(by_block.values, by_zone.values)
    np.testing.assert_array_equal(by_block.values, lazy.values)
    assert np.isfinite(by_block.values).mean() > 0.9


def test_soil_evaporative_efficiency__twin_relates_to_surface_moisture() -> None:
    from scipy.stats import spearmanr

    from soilfuse.twin.config import TwinConfig
    from soilfuse.twin.world import make_world

    world = make_world(TwinConfig.from_size("small", end="2019-04-09"))
    see = soil_evaporative_efficiency(world.truth["lst_day"], world.truth["ndvi"], block=16)
    sm = world.layered("sm")["sm"].isel(depth=0)
    ok = np.isfinite(see.values)
    rho = spearmanr(see.values[ok], sm.values[ok])[0]
    assert ok.mean() > 0.6  # measured 0.73
    assert rho > 0.3  # wetter surface soil -> cooler soil -> higher SEE (measured 0.53 over these 40 days)
