"""Route the core's Python logging into a node's ROS logger (rosout, console, log files)."""
from __future__ import annotations

import logging


class _RosLogHandler(logging.Handler):
    def __init__(self, ros_logger) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        text = f"[{record.name}] {self.format(record)}"
        # One call site per severity: rclpy refuses one site logging at several severities.
        try:
            if record.levelno >= logging.ERROR:
                self._ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._ros_logger.warning(text)
            elif record.levelno >= logging.INFO:
                self._ros_logger.info(text)
            else:
                self._ros_logger.debug(text)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def forward_python_logging(ros_logger, *logger_names: str):
    """Send records of the core modules a node drives (``logger_names`` and their children)
    at INFO and above to the node's ``ros_logger``.

    Each node names its own modules, so nodes composed in one process do not repeat each
    other's records.

    :return: a callable that detaches the handlers again (call it when the node is destroyed,
        or later nodes' records would also appear under the destroyed node's name).
    """
    attached = []
    for logger_name in logger_names:
        logger = logging.getLogger(logger_name)
        handler = _RosLogHandler(ros_logger)
        logger.addHandler(handler)
        attached.append((logger, handler))
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)

    def detach() -> None:
        for logger, handler in attached:
            logger.removeHandler(handler)
        attached.clear()

    return detach
