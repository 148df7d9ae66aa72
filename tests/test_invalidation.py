"""Precise invalidation: after a complete smoke run, each edit makes a dry run schedule exactly the rules it touches
and everything downstream of them, nothing else.

Expected sets are "roots + their descendants in the rule graph" (`snakemake --rulegraph`), so a row stays exact as
stages land. A row whose roots are not in the workflow's DAG yet is skipped with a reason; it runs once they exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import yaml

from import_probe import ROOT, module_path, rule_scripts, runtime_imports
from workflow_run import downstream, planned_jobs, planned_rules, preset_config, rule_graph

pytestmark = pytest.mark.workflow

SMOKE = Path("configs/smoke.yaml")


def set_config(*path: str, value=None, scale=None) -> Callable[[Path], None]:
    """Edit of configs/smoke.yaml: set the key at `path` to `value` (or multiply its number by `scale`). A key the
    overlay leaves to config.yaml is added to the overlay (the merged config keeps its key order)."""

    def edit(workdir: Path) -> None:
        cfg = yaml.safe_load((workdir / SMOKE).read_text())
        node, merged = cfg, preset_config(workdir, str(SMOKE))
        for key in path:
            if not isinstance(merged, dict) or key not in merged:
                pytest.skip(f"config key {'.'.join(path)} not in config.yaml + configs/smoke.yaml yet")
            merged = merged[key]
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = merged * scale if scale is not None else value
        (workdir / SMOKE).write_text(yaml.safe_dump(cfg, sort_keys=False))

    return edit


def rewrite_config_unchanged(workdir: Path) -> None:
    """Same values in the same order, different text (comments dropped, flow style, other indentation).

    (Key order is content here: the order of `prompts:` is the order of the manifest's rows.)
    """
    cfg = yaml.safe_load((workdir / SMOKE).read_text())
    (workdir / SMOKE).write_text("# reformatted\n" + yaml.safe_dump(cfg, sort_keys=False, indent=4, width=60))


def append_comment(relpath: str) -> Callable[[Path], None]:
    """A content change to one file (a comment line: `touch` alone does not rerun anything in Snakemake 9)."""

    def edit(workdir: Path) -> None:
        target = workdir / relpath
        if not target.exists():
            pytest.skip(f"{relpath} does not exist yet")
        target.write_text(target.read_text() + "\n# edited by test_invalidation\n")

    return edit


def edit_library(module: str, comment_only: bool = False) -> Callable[[Path], None]:
    """A change to the library module `module` (dotted): one more statement, or only a comment line."""

    def edit(workdir: Path) -> None:
        target = module_path(workdir / "src", module)
        line = "# edited by test_invalidation" if comment_only else "_EDITED_BY_TEST_INVALIDATION = 1"
        target.write_text(target.read_text() + f"\n{line}\n")

    return edit


@pytest.fixture(scope="module")
def loaded_by_rule() -> dict[str, set[str]]:
    """rule -> biasdiff modules its script's imports really load (measured in a subprocess)."""
    scripts = rule_scripts()
    runtime = runtime_imports(sorted({ROOT / "scripts" / s for s in scripts.values()}))
    return {rule: runtime[script] for rule, script in scripts.items()}


# Code edits whose expected reruns are measured: the rules whose scripts' imports load the module.
LIBRARY_EDITS = {
    "library_synth_shards": "biasdiff.artifacts.shards",
    "library_manifest_build": "biasdiff.manifest.build",
    "library_embed_projection": "biasdiff.vectors.projection",
    "library_seeds": "biasdiff.seeds",
    "library_image_grids": "biasdiff.grid",
}

# (id, edit, rules it must rerun directly (None: the rules whose scripts load the edited module, measured))
ROWS = [
    ("prompt_count", set_config("prompts", "woman", "count", scale=2), {"synthesize_shard", "build_manifest"}),
    ("script_content", append_comment("scripts/build_manifest.py"), {"build_manifest"}),
    *[(row, edit_library(module), None) for row, module in LIBRARY_EDITS.items()],
    ("comment_in_library", edit_library("biasdiff.grid", comment_only=True), set()),
    ("unrelated_rewrite", rewrite_config_unchanged, set()),
    ("fairface_timesteps", set_config("fairface", "timesteps", value=[200, 600]), {"fairface_audit"}),
    # the guidance scale names the experiment's main point: every model samples it (and the curve points) anew
    ("cfg_scale", set_config("sample", "guidance_scale", value=2.0),
     {"sample_word", "readout_sdedit", "experiment_sample"}),
    ("jl_seed", set_config("embedding", "seed", value=1), {"embed_words", "experiment_embed"}),  # every arm's
    ("audit_setting", set_config("audit", "gender_accuracy_floor", value=0.01), {"audit_samples", "experiment_audit"}),
    ("classifier_setting", set_config("audit", "classifier", "epochs", value=3), {"train_attribute_classifier"}),
    ("correction_strength", set_config("audit", "readout", "sdedit", "correction_strength", value=0.1),
     {"audit_samples", "experiment_audit"}),
    ("experiment_guidance_scales", set_config("experiment", "guidance_scales", value=[1, 4]), {"experiment_sample"}),
    ("experiment_confidence", set_config("experiment", "confidence", value=0.9), {"experiment_summary"}),
    ("arm_transform", set_config("experiment", "arms", "swapped", "embedding", "transform", "words",
                                 value=["nurse", "person"]), {"experiment_embed"}),
    ("sdedit_strengths", set_config("audit", "readout", "sdedit", "strengths", value=[0.1, 0.3, 0.6]),
     {"readout_sdedit"}),
    ("detectability_ladder", set_config("audit", "readout", "diffusion_t", value=[0, 500]), {"readout_detectability"}),
]


def test_complete_run_schedules_nothing(smoke_workdir):
    assert planned_jobs(smoke_workdir) == []


@pytest.fixture(scope="module")
def graph(smoke_workdir) -> dict[str, set[str]]:
    """The smoke DAG's rule graph (none of the edits below adds or removes a rule or an edge)."""
    return rule_graph(smoke_workdir)


@pytest.mark.parametrize("edit,roots", [pytest.param(e, r, id=i) for i, e, r in ROWS])
def test_edit_reruns_exactly_its_rules_and_downstream(copy_workdir, graph, loaded_by_rule, edit, roots, request):
    workdir = copy_workdir()
    edit(workdir)
    if roots is None:
        # Lower bound, measured: every rule whose script's imports load the module, and everything downstream. (Code
        # a script imports lazily, inside a function, is hashed too, so more rules may rerun -- never fewer.)
        module = LIBRARY_EDITS[request.node.callspec.id]
        roots = {rule for rule, modules in loaded_by_rule.items() if module in modules} & set(graph)
        assert roots, f"no rule in the DAG loads {module}"
        planned = planned_rules(workdir)
        assert downstream(graph, roots) <= planned, sorted(downstream(graph, roots) - planned)
        return
    missing = sorted(roots - set(graph))
    if missing:
        pytest.skip(f"rule(s) {missing} not in the workflow's DAG yet")
    assert planned_rules(workdir) == (downstream(graph, roots) if roots else set())


def test_raising_a_count_by_whole_shards_adds_only_those_shards(copy_workdir):
    workdir = copy_workdir()
    spec = yaml.safe_load((workdir / SMOKE).read_text())["prompts"]["woman"]
    n_old = -(-spec["count"] // spec["shard_size"])
    set_config("prompts", "woman", "count", value=spec["count"] + 2 * spec["shard_size"])(workdir)
    shards = [w for rule, w in planned_jobs(workdir) if rule == "synthesize_shard"]
    assert shards == [f"prompt=woman, shard={i:05d}" for i in (n_old, n_old + 1)]


def test_jl_seed_change_leaves_synthesis_alone(copy_workdir, graph):
    workdir = copy_workdir()
    if "embed_words" not in graph:
        pytest.skip("embed_words not in the workflow's DAG yet")
    set_config("embedding", "seed", value=1)(workdir)
    rules = planned_rules(workdir)
    assert "embed_words" in rules
    assert not rules & {"synthesize_shard", "build_manifest"}
