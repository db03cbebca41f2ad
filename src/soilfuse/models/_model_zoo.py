"""The five regressors of the multi-model window selector and their search grids.

Rao et al. (2022) fit multiple linear regression (MLR), support vector regression
(SVR), a feed-forward neural network (ANN), random forest (RF) and extreme gradient
boosting (XGB) in every 16-day window and tune SVR, ANN, RF and XGB by grid-search
cross-validation with RMSE as the score. Their tuned values (supplement Tables S2,
S3) are not in the paper's text, so the grids below span the usual ranges for
soil-moisture regression on a few hundred to a few thousand samples.

Model definitions
-----------------
=====  ====  ===========================================================================
name   code  estimator
=====  ====  ===========================================================================
MLR    0     ``Pipeline(StandardScaler, LinearRegression)``; nothing to tune
SVR    1     ``Pipeline(StandardScaler, SVR(kernel="rbf"))`` on a standardised target
ANN    2     ``Pipeline(StandardScaler, MLPRegressor(early_stopping=True))`` on a
             standardised target
RF     3     ``RandomForestRegressor`` with bounded depth and leaf size (scikit-learn's
             fully grown default trees are very slow, see DEPENDENCIES.md)
XGB    4     ``xgboost.XGBRegressor(tree_method="hist")``
=====  ====  ===========================================================================

SVR and ANN see a standardised target (``TransformedTargetRegressor``): soil moisture
spans ~0.02-0.5 m³ m⁻³, so SVR's ``epsilon`` (width of the loss-free tube, in target
units) and the network's initial weights would otherwise depend on the target's unit.
Their ``epsilon`` below is therefore in standard deviations of the target.

Grid profiles
-------------
``"paper"``
    The grids searched per window in production (5-fold CV on the training half):
    SVR 4×2×2 = 16 candidates, ANN 2×2 = 4, RF 2×2 = 4, XGB 3×2 = 6. A window of
    2,000 samples and 14 predictors takes ~1 min on one core for all five models.
``"demo"``
    One or two candidates per model, for the demo run on the synthetic twin.
``"test"``
    Tiny models for unit tests.

Grid keys are the tuned estimator's own parameter names (``C``, ``max_depth``...);
:func:`param_grid` adds the pipeline prefix that ``GridSearchCV`` needs.

Persistence
-----------
:func:`save_model` writes XGBoost models in XGBoost's UBJSON format and scikit-learn
models with ``skops`` (no pickle); :func:`load_model` loads a skops file only if every
type in it is a scikit-learn type this module builds.

Usage
-----
>>> sorted(MODEL_ZOO)
['ANN', 'MLR', 'RF', 'SVR', 'XGB']
>>> MODEL_ZOO["XGB"].code
4
>>> param_grid("SVR", "demo")
{'regressor__model__C': [1.0, 10.0], 'regressor__model__gamma': ['scale'], 'regressor__model__epsilon': [0.1]}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from xgboost import XGBRegressor

from soilfuse.exceptions import ConfigError, DataError

__all__ = [
    "GRID_PROFILES",
    "MODEL_NAMES",
    "MODEL_ZOO",
    "ModelSpec",
    "load_model",
    "make_model",
    "param_grid",
    "save_model",
]

logger = logging.getLogger(__name__)

Grid = Mapping[str, Sequence[Any]]

#: Names of the grid profiles every model defines.
GRID_PROFILES: tuple[str, ...] = ("paper", "demo", "test")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo.

    Attributes
    ----------
    name : str
        Short name (``"MLR"`` ... ``"XGB"``).
    code : int
        Integer code used in the product's model flag (0 MLR ... 4 XGB).
    prefix : str
        Parameter path of the tuned estimator inside its wrapper (``"regressor__model__"``
        for SVR and ANN, ``"model__"`` for MLR, empty for RF and XGB).
    grids : mapping
        Grid per profile of :data:`GRID_PROFILES`, keyed by the bare parameter names.
    build : callable
        ``build(random_state, n_jobs)`` returns a new unfitted estimator.
    """

    name: str
    code: int
    prefix: str
    grids: Mapping[str, Grid]
    build: Callable[[int | None, int], BaseEstimator]


def _scaled(model: BaseEstimator, *, scale_target: bool) -> BaseEstimator:
    pipe = Pipeline([("scale", StandardScaler()), ("model", model)])
    if not scale_target:
        return pipe
    return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())


def _mlr(random_state: int | None, n_jobs: int) -> BaseEstimator:
    return _scaled(LinearRegression(), scale_target=False)


def _svr(random_state: int | None, n_jobs: int) -> BaseEstimator:
    return _scaled(SVR(kernel="rbf", C=1.0, gamma="scale", epsilon=0.1, cache_size=500), scale_target=True)


def _ann(random_state: int | None, n_jobs: int) -> BaseEstimator:
    mlp = MLPRegressor(
        hidden_layer_sizes=(32,), alpha=1e-3, learning_rate_init=1e-3, max_iter=300,
        early_stopping=True, validation_fraction=0.1, n_iter_no_change=10, random_state=random_state,
    )
    return _scaled(mlp, scale_target=True)


def _rf(random_state: int | None, n_jobs: int) -> BaseEstimator:
    return RandomForestRegressor(
        n_estimators=120, max_depth=16, min_samples_leaf=2, max_features=0.5,
        n_jobs=n_jobs, random_state=random_state,
    )


def _xgb(random_state: int | None, n_jobs: int) -> BaseEstimator:
    return XGBRegressor(
        tree_method="hist", n_estimators=200, max_depth=6, learning_rate=0.1, subsample=0.8,
        colsample_bytree=0.8, n_jobs=n_jobs, random_state=random_state,
    )


#: The five models of Rao et al. (2022), keyed by name, in code order.
MODEL_ZOO: Mapping[str, ModelSpec] = MappingProxyType({
    "MLR": ModelSpec("MLR", 0, "model__", {"paper": {}, "demo": {}, "test": {}}, _mlr),
    "SVR": ModelSpec("SVR", 1, "regressor__model__", {
        "paper": {"C": [1.0, 3.0, 10.0, 30.0], "gamma": ["scale", 0.1], "epsilon": [0.05, 0.2]},
        "demo": {"C": [1.0, 10.0], "gamma": ["scale"], "epsilon": [0.1]},
        "test": {"C": [1.0, 10.0], "epsilon": [0.1]},
    }, _svr),
    "ANN": ModelSpec("ANN", 2, "regressor__model__", {
        "paper": {"hidden_layer_sizes": [(32,), (64, 32)], "alpha": [1e-4, 1e-2]},
        "demo": {"hidden_layer_sizes": [(32,)], "alpha": [1e-3]},
        "test": {"hidden_layer_sizes": [(16,)], "max_iter": [200]},
    }, _ann),
    "RF": ModelSpec("RF", 3, "", {
        "paper": {"n_estimators": [120], "max_depth": [8, 16], "min_samples_leaf": [2, 5]},
        "demo": {"n_estimators": [100], "max_depth": [12], "min_samples_leaf": [2]},
        "test": {"n_estimators": [40], "max_depth": [8]},
    }, _rf),
    "XGB": ModelSpec("XGB", 4, "", {
        "paper": {"n_estimators": [200], "max_depth": [4, 6, 8], "learning_rate": [0.05, 0.1]},
        "demo": {"n_estimators": [200], "max_depth": [4, 6], "learning_rate": [0.1]},
        "test": {"n_estimators": [80], "max_depth": [3, 5], "learning_rate": [0.15]},
    }, _xgb),
})

#: Model names in code order (0 MLR ... 4 XGB).
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_ZOO)


def _spec(name: str) -> ModelSpec:
    try:
        return MODEL_ZOO[name]
    except KeyError as err:
        msg = f"Unknown model {name!r}; choose from {list(MODEL_NAMES)}."
        raise ConfigError(msg) from err


def make_model(name: str, *, random_state: int | None = None, n_jobs: int = 1) -> BaseEstimator:
    """A new unfitted estimator of the zoo.

    Parameters
    ----------
    name : {"MLR", "SVR", "ANN", "RF", "XGB"}
    random_state : int, optional
        Seed of the stochastic models (ANN, RF, XGB).
    n_jobs : int
        Threads of RF and XGB.

    Raises
    ------
    ConfigError
        If ``name`` is not a model of the zoo.
    """
    return _spec(name).build(random_state, n_jobs)


def param_grid(name: str, grid: str | Grid = "paper") -> dict[str, list[Any]]:
    """Grid of ``name`` ready for ``GridSearchCV`` (keys carry the pipeline prefix).

    Parameters
    ----------
    name : str
        Model name.
    grid : str or mapping
        A profile of :data:`GRID_PROFILES`, or an explicit grid with bare parameter
        names (``{"max_depth": [4, 6]}``).

    Raises
    ------
    ConfigError
        If the profile is unknown.
    """
    spec = _spec(name)
    if isinstance(grid, str):
        if grid not in spec.grids:
            msg = f"Unknown grid profile {grid!r} for {name}; choose from {list(GRID_PROFILES)} or pass a mapping."
            raise ConfigError(msg)
        grid = spec.grids[grid]
    return {spec.prefix + key: list(values) for key, values in grid.items()}


# ---------------------------------------------------------------------- persistence
# Types inside fitted zoo models that skops does not trust by default. They are
# scikit-learn internals of the estimators built above (tree arrays of the forest, the
# network's optimiser state); anything else in a file is refused.
_SKOPS_TRUSTED = (
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as err:
        msg = "Saving scikit-learn models needs the 'skops' package; install it with `pip install skops`."
        raise ImportError(msg) from err
    return sio


def save_model(model: BaseEstimator, folder: Path, stem: str) -> Path:
    """Write a fitted zoo model without pickle.

    XGBoost models go to ``stem.ubj`` (XGBoost's UBJSON format), scikit-learn models to
    ``stem.skops``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if isinstance(model, XGBRegressor):
        path = folder / f"{stem}.ubj"
        model.save_model(path)
        return path
    path = folder / f"{stem}.skops"
    _skops().dump(model, path)
    return path


def load_model(path: Path) -> BaseEstimator:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    DataError
        If a skops file holds types other than scikit-learn's own and those listed in
        ``_SKOPS_TRUSTED`` (a file not written by soilfuse).
    """
    if path.suffix == ".ubj":
        model = XGBRegressor()
        model.load_model(path)
        return model
    sio = _skops()
    untrusted = sio.get_untrusted_types(file=path)
    unknown = sorted(set(untrusted) - set(_SKOPS_TRUSTED))
    if unknown:
        msg = f"Model file {path} holds types soilfuse does not create: {unknown}; refusing to load it."
        raise DataError(msg)
    return sio.load(path, trusted=list(untrusted))
