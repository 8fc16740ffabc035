"""Resources: the configured qpipe project (settings, calendar, source, lake)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from qpipe.project import Project


class ProjectResource(ConfigurableResource):
    """The qpipe project: ``config_path`` (None: ``$QPIPE_CONFIG`` or the packaged default)
    and ``data_dir`` (None: ``$QPIPE_DATA`` or ``./data``)."""

    config_path: str | None = None
    data_dir: str | None = None
    _project: Project | None = PrivateAttr(default=None)

    def get(self) -> Project:
        """The project, loaded once per resource instance."""
        if self._project is None:
            self._project = Project.load(self.config_path, self.data_dir)
        return self._project
