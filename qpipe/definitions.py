"""The Dagster code location: ``dagster dev -w workspace.yaml`` or ``-m qpipe.definitions``.

Configuration comes from ``$QPIPE_CONFIG`` (else the packaged default) and data lives under
``$QPIPE_DATA`` (else ``./data``).
"""

from qpipe.defs.build import build_definitions
from qpipe.project import Project

defs = build_definitions(Project.load())
