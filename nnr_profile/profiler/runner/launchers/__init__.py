"""Launchers: where a sweep's trials run. `local` (this machine), `slurm` (a job array) and
`submitit-local` (the cluster path on this machine); `base` has the interface and registry.

`LAUNCHER_MODULES` names each launcher's module without importing it, so the command line can
list the names cheaply; a new launcher adds its module here (see `base`).
"""

LAUNCHER_MODULES = {
    "local": "nnr_profile.profiler.runner.launchers.local",
    "slurm": "nnr_profile.profiler.runner.launchers.slurm",
    "submitit-local": "nnr_profile.profiler.runner.launchers.submitit_local",
}
