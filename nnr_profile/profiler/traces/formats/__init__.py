"""One module per trace format; each builds its reader and registers itself on import.

To add a format, add a module here that calls
:func:`nnr_profile.profiler.traces.base.register_reader` with a
:class:`~nnr_profile.profiler.traces.base.TraceReader`
(name, description, ``read``, ``summarize``, ``sniff``, ``priority``); the registry imports
every module of this package, and the CLI's ``--trace-format`` choices follow.
"""
