"""Resources: the configured qpipe project (settings, calendar, source, lake)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from qpipe.project import Project

_shared: list[tuple[str | None, Project]] = []


@contextmanager
def sharing(project: Project, config_path: str | None) -> Iterator[None]:
    """Within the block, resources of the same configuration and data directory use
    ``project`` instead of loading their own (in-process runs from the command line reuse
    its instruments, calendar and strategies rather than building them again)."""
    _shared.append((config_path, project))
    try:
        yield
    finally:
        _shared.pop()


class ProjectResource(ConfigurableResource):
    """The qpipe project: ``config_path`` (None: ``$QPIPE_CONFIG`` or the packaged default)
    and ``data_dir`` (None: ``$QPIPE_DATA`` or ``./data``)."""

    config_path: str | None = None
    data_dir: str | None = None
    _project: Project | None = PrivateAttr(default=None)

    def get(self) -> Project:
        """The project, loaded once per resource instance."""
        if self._project is None:
            for config_path, project in reversed(_shared):
                if (
                    config_path == self.config_path
                    and self.data_dir is not None
                    and (Path(self.data_dir).resolve() == project.root.resolve())
                ):
                    self._project = project
                    break
            else:
                self._project = Project.load(self.config_path, self.data_dir)
        return self._project
