"""Writes serialized ROS 2 messages into a rosbag2-layout MCAP bag, without rosbag2.

The bag is a folder holding ``<name>_0.mcap`` and the ``metadata.yaml`` rosbag2 writes, so
``ros2 bag play <folder>`` / ``ros2 bag info <folder>`` work on Humble, Jazzy and Kilted, and Foxglove
opens the ``.mcap`` file directly. Messages are the CDR bytes exactly as they travelled (a raw
subscription), each channel's schema carries the full ``ros2msg`` definition (``ros.msgdefs``).
The metadata follows rosbag2's format version 5, the newest every supported distro reads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mcap.writer import CompressionType, Writer

from spatial_trace_ros import __version__
from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.ros.msgdefs import MESSAGE_ENCODING, SCHEMA_ENCODING, message_definition

METADATA_VERSION = 5
STORAGE_ID = "mcap"


@dataclass
class TopicRecord:
    """What the bag knows of one topic."""

    name: str
    type_name: str
    channel_id: int
    count: int = 0


class McapBagWriter:
    """Thread-safe: subscriptions on several executor threads may write at once."""

    def __init__(self, folder: str | Path, name: str = "recording", compression: str = "zstd") -> None:
        self.folder = Path(folder)
        if self.folder.exists() and any(self.folder.iterdir()):
            raise ConfigError(f"bag folder {self.folder} exists and is not empty; remove it or pick another")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.file_name = f"{name}_0.mcap"
        self.path = self.folder / self.file_name
        modes = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}
        if compression not in modes:
            raise ConfigError(f"unknown bag compression {compression!r}; available: {', '.join(modes)}")
        self._stream = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._writer = Writer(self._stream, compression=modes[compression])
        self._writer.start(profile="ros2", library=f"spatial_trace_ros {__version__}")
        self._lock = threading.Lock()
        self._schemas: dict[str, int] = {}
        self.topics: dict[str, TopicRecord] = {}
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._closed = False

    def add_topic(self, topic: str, type_name: str) -> None:
        """Register a topic before its first message (its definition is looked up now)."""
        with self._lock:
            self._add_topic_locked(topic, type_name)

    def _add_topic_locked(self, topic: str, type_name: str) -> TopicRecord:
        record = self.topics.get(topic)
        if record is not None:
            if record.type_name != type_name:
                raise ConfigError(f"topic {topic} is recorded as {record.type_name}, not {type_name}")
            return record
        schema_id = self._schemas.get(type_name)
        if schema_id is None:
            text = message_definition(type_name)
            schema_id = self._writer.register_schema(type_name, SCHEMA_ENCODING, text.encode())
            self._schemas[type_name] = schema_id
        channel_id = self._writer.register_channel(topic, MESSAGE_ENCODING, schema_id)
        record = TopicRecord(topic, type_name, channel_id)
        self.topics[topic] = record
        return record

    def write(self, topic: str, type_name: str, data: bytes, log_time_ns: int | None = None) -> None:
        """One serialized (CDR) message; ``log_time_ns`` defaults to now (receive time, as ros2 bag)."""
        stamp = time.time_ns() if log_time_ns is None else int(log_time_ns)
        with self._lock:
            if self._closed:
                return  # late callbacks during shutdown
            record = self._add_topic_locked(topic, type_name)
            self._writer.add_message(record.channel_id, log_time=stamp, data=bytes(data), publish_time=stamp,
                                     sequence=record.count)
            record.count += 1
            self.first_ns = stamp if self.first_ns is None else min(self.first_ns, stamp)
            self.last_ns = stamp if self.last_ns is None else max(self.last_ns, stamp)

    @property
    def message_count(self) -> int:
        return sum(r.count for r in self.topics.values())

    def metadata(self) -> dict[str, Any]:
        """rosbag2's ``metadata.yaml`` content (format version 5)."""
        start = self.first_ns or 0
        duration = (self.last_ns - start) if self.last_ns is not None else 0
        total = self.message_count
        topics = [
            {"topic_metadata": {"name": r.name, "type": r.type_name, "serialization_format": MESSAGE_ENCODING,
                                "offered_qos_profiles": ""},
             "message_count": r.count}
            for r in sorted(self.topics.values(), key=lambda r: r.name)
        ]
        return {"rosbag2_bagfile_information": {
            "version": METADATA_VERSION,
            "storage_identifier": STORAGE_ID,
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": total,
            "topics_with_message_count": topics,
            "compression_format": "",
            "compression_mode": "",
            "relative_file_paths": [self.file_name],
            "files": [{"path": self.file_name, "starting_time": {"nanoseconds_since_epoch": start},
                       "duration": {"nanoseconds": duration}, "message_count": total}],
        }}

    def close(self) -> Path:
        """Finish the MCAP file (summary, indexes) and write ``metadata.yaml``; returns the folder."""
        with self._lock:
            if self._closed:
                return self.folder
            self._closed = True
            self._writer.finish()
            self._stream.close()
            (self.folder / "metadata.yaml").write_text(yaml.safe_dump(self.metadata(), sort_keys=False))
        return self.folder

    def __enter__(self) -> McapBagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
