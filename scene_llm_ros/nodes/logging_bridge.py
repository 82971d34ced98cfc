"""Route the core's Python logging into a node's ROS logger (rosout, console, log files)."""
from __future__ import annotations

import logging

_LEVELS = ((logging.ERROR, "error"), (logging.WARNING, "warning"), (logging.INFO, "info"))


class _RosLogHandler(logging.Handler):
    def __init__(self, ros_logger) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        method = next((name for level, name in _LEVELS if record.levelno >= level), "debug")
        try:
            getattr(self._ros_logger, method)(f"[{record.name}] {self.format(record)}")
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def forward_python_logging(ros_logger, logger_name: str) -> None:
    """Send records of ``logger_name`` (and its children) at INFO and above to ``ros_logger``.

    Idempotent per ROS logger name, so several nodes in one process each get the records once.
    """
    logger = logging.getLogger(logger_name)
    name = ros_logger.name
    if any(isinstance(h, _RosLogHandler) and h._ros_logger.name == name  # noqa: SLF001
           for h in logger.handlers):
        return
    logger.addHandler(_RosLogHandler(ros_logger))
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
