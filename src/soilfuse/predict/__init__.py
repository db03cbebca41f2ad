"""Prediction: apply fitted models over datacubes lazily and write resumable products.

* :func:`predict_cube` — lazy per-chunk application of a model to covariates.
* :func:`cube_to_frame` — a chunk as a feature table.
* :func:`write_product` — region-by-region Zarr writing that resumes after a kill.
* :func:`monthly_means` — monthly aggregates of a daily product.
"""

from soilfuse.predict.cube import cube_to_frame, predict_cube
from soilfuse.predict.product import monthly_means, write_product

__all__ = ["cube_to_frame", "monthly_means", "predict_cube", "write_product"]
