"""The ops table: probes that ran, every model listed, a mark per op seen, escaping."""

import json

import pandas as pd

from nnr_profile.reports.nondeterministic_ops import (
    MARK,
    OPS_COLUMNS,
    op_matrix,
    ops_table,
    write_ops,
)


def _probes(rows):
    """Store-shaped probe rows: (probe_id, workload, args, arch, op, status, complete)."""
    records = []
    for probe_id, workload, args, arch, op, status, complete in rows:
        records.append(
            {
                "probe_id": probe_id,
                "framework": "torch",
                "framework_version": "2.4.0",
                "workload": workload,
                "workload_args": json.dumps(args),
                "mode": "deterministic",
                "gpu_arch": arch,
                "gpu_name": f"{arch} GPU",
                "status": status,
                "complete": complete,
                "source": "ops",
                "finished_at": "2025-01-01T00:00:00Z",
                "op": op,
            }
        )
    return pd.DataFrame(records)


PROBES = _probes(
    [
        (1, "resnet50", {}, "Ampere", "index_add_cuda_", "ok", 1),
        (1, "resnet50", {}, "Ampere", "scatter_add_cuda_", "ok", 1),
        (2, "vgg16", {}, "Ampere", None, "ok", 1),
        (3, "densenet", {}, "Ampere", "index_add_cuda_", "ok", 0),
        (4, "broken", {}, "Ampere", None, "failed", 0),
        (5, "resnet50", {}, "CPU", "put_|x", "ok", 1),
    ]
)


def test_the_table_keeps_probes_that_ran_and_models_without_ops():
    table = ops_table(PROBES)
    assert list(table.columns) == OPS_COLUMNS
    assert "broken" not in set(table["workload"])
    assert table.loc[table["workload"] == "vgg16", "op"].tolist() == [""]
    assert table.loc[table["workload"] == "densenet", "complete"].tolist() == [False]


def test_the_matrix_marks_each_op_seen_per_model_and_device():
    matrix = op_matrix(ops_table(PROBES))
    ops = [c for c in matrix.columns if c not in ("model", "framework", "device", "note")]
    assert ops[0] == "index_add_cuda_"  # seen by two models: first
    assert set(ops) == {"index_add_cuda_", "scatter_add_cuda_", "put_|x"}
    rows = {(r.model, r.device.split()[0]): r for r in matrix.itertuples(index=False)}
    assert set(rows) == {
        ("resnet50", "Ampere"),
        ("vgg16", "Ampere"),
        ("densenet", "Ampere"),
        ("resnet50", "CPU"),
    }
    resnet = matrix[(matrix["model"] == "resnet50") & matrix["device"].str.startswith("Ampere")]
    assert resnet[["index_add_cuda_", "scatter_add_cuda_", "put_|x"]].values.tolist() == [
        [MARK, MARK, ""]
    ]
    assert (matrix.loc[matrix["model"] == "vgg16", ops] == "").all(axis=None)
    assert matrix.loc[matrix["model"] == "densenet", "note"].item() == "stopped at the first op"
    assert matrix["framework"].unique().tolist() == ["torch 2.4.0"]


def test_arguments_name_the_model_only_where_it_was_probed_with_several():
    probes = _probes(
        [
            (1, "calibrate", {"overhead": 0.1}, "CPU", None, "ok", 1),
            (2, "calibrate", {"overhead": 0.2}, "CPU", None, "ok", 1),
            (3, "mlp", {"norm": "none"}, "CPU", "put_", "ok", 1),
        ]
    )
    models = op_matrix(ops_table(probes))["model"].tolist()
    assert sorted(models) == ["calibrate overhead=0.1", "calibrate overhead=0.2", "mlp"]


def test_the_files_escape_op_names(tmp_path):
    files = write_ops(ops_table(PROBES), tmp_path)
    assert [f.name for f in files] == ["nondeterministic_ops.csv", "nondeterministic_ops.md"]
    markdown = (tmp_path / "nondeterministic_ops.md").read_text()
    assert "put_\\|x" in markdown
    header = markdown.splitlines()[0]
    assert header.count("|") - header.count("\\|") == len(op_matrix(ops_table(PROBES)).columns) + 1


def test_no_probes_no_table():
    assert ops_table(pd.DataFrame()).empty and op_matrix(ops_table(pd.DataFrame())).empty
