"""Open rosbag2 bags read-only: summary (:func:`inspect_bag`) and raw message stream."""
from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rosbags.interfaces import ConnectionExtRosbag2, QosDurability, QosReliability
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader

from scene_llm_ros.data.rosbag.messages import typestore
from scene_llm_ros.errors import DataFormatError, SceneLlmError

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag.

    :ivar latched: every recorded publisher offered transient-local durability (``/tf_static``);
        a replay must publish it the same way.
    :ivar reliable: every recorded publisher offered reliable delivery; None if unrecorded.
    """

    name: str
    msgtype: str
    message_count: int
    latched: bool = False
    reliable: bool | None = None


@dataclass(frozen=True)
class BagInfo:
    """Summary of a rosbag2 bag.

    :ivar storage: ``mcap`` or ``sqlite3``.
    :ivar start_ns: log time of the first message (0 for an empty bag).
    :ivar duration_ns: log time of the last message minus that of the first.
    :ivar topics: by topic name, sorted by name.
    """

    path: Path
    storage: str
    start_ns: int
    duration_ns: int
    message_count: int
    topics: dict[str, TopicInfo]

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.duration_ns * 1e-9

    def topics_of_type(self, msgtype: str) -> list[str]:
        """Names of the topics carrying ``msgtype`` (e.g. ``sensor_msgs/msg/Image``)."""
        return [name for name, topic in self.topics.items() if topic.msgtype == msgtype]

    def describe(self) -> str:
        """One line per topic, ``name [type] count``, for messages and logs."""
        return ", ".join(f"{t.name} [{t.msgtype}] x{t.message_count}"
                         for t in self.topics.values()) or "no topics"


class BagMessage(NamedTuple):
    """One message in log-time order.

    :ivar data: raw CDR bytes (what a replay republishes), or the deserialised rosbags message.
    """

    topic: str
    msgtype: str
    log_time_ns: int
    data: Any


@contextmanager
def _bag_errors(path: Path) -> Iterator[None]:
    """Turn whatever the storage layers raise on a damaged or foreign file into DataFormatError.

    rosbags, apsw (sqlite3) and the mcap parser each raise their own exception types (and
    struct/zstd/yaml errors) for a truncated or foreign file, so this is deliberately broad; it
    wraps only calls into rosbags.
    """
    try:
        yield
    except SceneLlmError:
        raise
    except Exception as exc:
        raise DataFormatError(f"{path} is not a readable rosbag2 bag: "
                              f"{type(exc).__name__}: {exc}") from exc


@contextmanager
def open_bag(path: str | Path) -> Iterator[Reader]:
    """Open a bag directory (with ``metadata.yaml``) or a bare ``.mcap`` / ``.db3`` file.

    :raises DataFormatError: if the path does not exist, is not a bag, or is damaged.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path} does not exist")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise DataFormatError(f"{path} is not a rosbag2 bag: it has no metadata.yaml")
    with _bag_errors(path):
        reader = Reader(path)
        reader.open()
    try:
        yield reader
    finally:
        with _bag_errors(path):
            reader.close()


def _storage_name(reader: Reader) -> str:
    storage = reader.storage
    parts = getattr(storage, "storages", [storage])  # a bag directory holds one per file
    names = {"mcap" if isinstance(p, McapReader) else
             "sqlite3" if isinstance(p, Sqlite3Reader) else type(p).__name__ for p in parts}
    return names.pop() if len(names) == 1 else "+".join(sorted(names))


def _topic_info(name: str, connections: list[Any]) -> TopicInfo:
    msgtypes = sorted({c.msgtype for c in connections})
    qos = [q for c in connections if isinstance(c.ext, ConnectionExtRosbag2)
           for q in c.ext.offered_qos_profiles]
    return TopicInfo(
        name=name, msgtype="|".join(msgtypes),
        message_count=sum(c.msgcount for c in connections),
        latched=bool(qos) and all(q.durability == QosDurability.TRANSIENT_LOCAL for q in qos),
        reliable=all(q.reliability == QosReliability.RELIABLE for q in qos) if qos else None)


def inspect_bag(path: str | Path) -> BagInfo:
    """Storage, time span and topics (type and message count) of a bag, from its index.

    :param path: bag directory or bare ``.mcap`` / ``.db3`` file.
    :raises DataFormatError: if the path is not a bag, or the bag is corrupt or truncated.
    """
    path = Path(path)
    with open_bag(path) as reader, _bag_errors(path):
        by_topic: dict[str, list[Any]] = {}
        for connection in reader.connections:
            by_topic.setdefault(connection.topic, []).append(connection)
        count = reader.message_count
        start = reader.start_time if count else 0
        # rosbags reports the end as one past the last message.
        duration = max(0, reader.end_time - 1 - start) if count else 0
        return BagInfo(path=path, storage=_storage_name(reader), start_ns=start,
                       duration_ns=duration, message_count=count,
                       topics={name: _topic_info(name, conns)
                               for name, conns in sorted(by_topic.items())})


def _storage_connections(reader: Reader) -> list[Any]:
    """The connections as the storage files declare them.

    rosbags matches the connections of ``metadata.yaml`` to those of the storage files by
    equal QoS, and yields nothing when they differ: ROS 2's recorder writes an infinite
    deadline as (2147483647 s, 4294967295 ns) into the storage but 0 into the metadata of the
    talker bags in ../shared/data/rosbag2. Filtering by the storage's own connections avoids it.
    """
    storages = getattr(reader.storage, "storages", None)
    if storages is None:  # a bare .mcap / .db3 file has only its own connections
        return list(reader.connections)
    return [c for storage in storages for c in storage.connections]


def iter_messages(path: str | Path, topics: Collection[str] | None = None, *,
                  deserialize: bool = False) -> Iterator[BagMessage]:
    """Messages of ``topics`` (default: all) in log-time order.

    A split bag is read file by file, which is log-time order as the recorder splits by time.

    :param topics: topic names; each must be in the bag.
    :param deserialize: yield rosbags message objects instead of raw CDR bytes.
    :raises DataFormatError: on an unknown topic, a type that cannot be deserialised, or a
        damaged bag (also midway through the iteration).
    """
    path = Path(path)
    with open_bag(path) as reader:
        with _bag_errors(path):
            connections = _storage_connections(reader)
        if topics is not None:
            missing = sorted(set(topics) - {c.topic for c in connections})
            if missing:
                raise DataFormatError(
                    f"{path} has no topic {', '.join(missing)}; it has "
                    f"{', '.join(sorted({c.topic for c in connections})) or 'no topics'}")
            connections = [c for c in connections if c.topic in topics]
        if not connections:
            return
        store = typestore()
        if deserialize:
            unknown = sorted({c.msgtype for c in connections} - set(store.types))
            if unknown:
                raise DataFormatError(f"{path}: cannot deserialise {', '.join(unknown)} (not in "
                                      "the ROS 2 Jazzy typestore); read those topics raw")
        stream = reader.messages(connections=connections)
        while True:
            with _bag_errors(path):
                item = next(stream, None)
                if item is None:
                    return
                connection, log_time_ns, raw = item
                data = store.deserialize_cdr(raw, connection.msgtype) if deserialize else raw
            yield BagMessage(connection.topic, connection.msgtype, log_time_ns, data)
