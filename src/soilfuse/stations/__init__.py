"""Station processing: quality control, daily aggregation, depth mapping, co-location, rescaling.

The stage turns raw sub-daily station records (a
:class:`~soilfuse.io.stations.StationData`, e.g. from
:func:`~soilfuse.io.ismn.read_ismn` or the synthetic twin) into daily training and
validation targets on soilfuse's layers:

>>> from soilfuse.io.stations import read_stations                    # doctest: +SKIP
>>> from soilfuse import stations as st                               # doctest: +SKIP
>>> data = read_stations("twin/stations")                             # doctest: +SKIP
>>> flagged = st.run_qc(data, precipitation=era5["tp"])               # doctest: +SKIP
>>> clean = st.apply_qc(flagged, refill=True)                         # doctest: +SKIP
>>> daily = st.daily_means(clean, min_coverage=0.5)                   # doctest: +SKIP
>>> layers = st.map_to_layers(daily)                                  # doctest: +SKIP
>>> layers = st.filter_completeness(layers, max_missing=0.2)          # doctest: +SKIP
>>> targets = st.rescale_to_reference(layers, era5["sm"], data)       # doctest: +SKIP
>>> training = st.average_per_cell(targets, grid, data)               # doctest: +SKIP

* :func:`run_qc` / :func:`apply_qc` - ISMN-style flags (Dorigo et al. 2013) in a
  ``qc_flag`` column, codes in :data:`QC_FLAGS`; drop and refill (Li et al. 2022).
* :func:`daily_means` - UTC daily means with a coverage rule per series.
* :func:`assign_layers`, :func:`map_to_layers` - sensor depths to target layers.
* :func:`filter_completeness` - drop series with too many missing days.
* :func:`average_per_cell` - co-located stations averaged per grid cell.
* :func:`rescale_to_reference` and the methods in :data:`RESCALING_METHODS`.
"""

from soilfuse.stations.depths import (
    DEFAULT_SM_LAYERS,
    DEFAULT_ST_DEPTHS,
    assign_layers,
    map_to_layers,
    st_tolerance,
)
from soilfuse.stations.ingest import (
    DEFAULT_GOOD_FLAGS,
    SERIES_KEYS,
    average_per_cell,
    daily_means,
    filter_completeness,
    infer_sampling_interval,
    usable_mask,
)
from soilfuse.stations.qc import (
    FAULT_PRIORITY,
    QC_FLAGS,
    QCFlag,
    QCThresholds,
    apply_qc,
    fault_class,
    has_flag,
    run_qc,
)
from soilfuse.stations.rescale import (
    RESCALING_METHODS,
    cdf_match,
    get_rescaling_method,
    linear_variance_scaling,
    mean_std,
    reference_layer_for,
    rescale_to_reference,
)

__all__ = [
    "DEFAULT_GOOD_FLAGS",
    "DEFAULT_SM_LAYERS",
    "DEFAULT_ST_DEPTHS",
    "FAULT_PRIORITY",
    "QC_FLAGS",
    "RESCALING_METHODS",
    "SERIES_KEYS",
    "QCFlag",
    "QCThresholds",
    "apply_qc",
    "assign_layers",
    "average_per_cell",
    "cdf_match",
    "daily_means",
    "fault_class",
    "filter_completeness",
    "get_rescaling_method",
    "has_flag",
    "infer_sampling_interval",
    "linear_variance_scaling",
    "map_to_layers",
    "mean_std",
    "reference_layer_for",
    "rescale_to_reference",
    "run_qc",
    "st_tolerance",
    "usable_mask",
]
