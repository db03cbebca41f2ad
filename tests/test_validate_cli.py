"""``soilfuse validate`` end to end: real ERA5 vs OZNET, and the twin's reanalysis vs its stations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from soilfuse.cli import main


def test_validate__real_era5_against_oznet(real_data: Path, tmp_path: Path) -> None:
    era5 = real_data / "era5" / "regional_hourly_subsets" / "murrumbidgee_weekly_2018-08_2020-07"
    oznet = real_data / "insitu_ismn" / "oznet_murrumbidgee"
    assert main(["validate", str(era5), str(oznet), "--out", str(tmp_path)]) == 0
    overall = pd.read_csv(tmp_path / "tables" / "metrics_overall.csv").set_index("summary")
    pooled = overall.loc["pooled"]
    # The data README's own check: r 0.59 on window means, in-situ mean 0.13, ERA5 0.23 m3 m-3.
    assert 0.55 < pooled["R"] < 0.63
    assert pooled["mean_obs"] == pytest.approx(0.13, abs=0.01)
    assert pooled["mean_pred"] == pytest.approx(0.226, abs=0.01)
    assert overall.loc["station_median", "n_obs"] == 18
    assert (tmp_path / "figures" / "scatter_0-7cm.png").stat().st_size > 10_000


@pytest.mark.slow
def test_validate__twin_reanalysis_against_twin_stations(tmp_path: Path) -> None:
    from soilfuse.twin import generate

    twin = tmp_path / "twin"
    generate("small", twin, seed=3)
    out = tmp_path / "val"
    assert main(["validate", str(twin / "reanalysis"), str(twin / "stations"), "--out", str(out)]) == 0
    layers = pd.read_csv(out / "tables" / "metrics_by_layer.csv")
    assert len(layers) >= 2
    # the reanalysis has real, measurable error against the (noisy) stations
    assert (layers["urmsd"] > 0.01).all() and (layers["R"] > 0.3).all()
