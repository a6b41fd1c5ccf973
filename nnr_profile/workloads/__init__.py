"""Workloads: named training setups per framework, and their registry."""

from nnr_profile.workloads.registry import (
    BuildContext,
    Workload,
    get_workload,
    load_workloads,
    register_workload,
)

__all__ = ["BuildContext", "Workload", "get_workload", "load_workloads", "register_workload"]
