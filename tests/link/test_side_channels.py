"""Side-channel framing and the three channels, against the bytes of protocol.md §11."""

from __future__ import annotations

import logging
import uuid

import pytest

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.protocol.channels import (
    ENGINE_CONFIGURATION_CHANNEL_ID,
    ENVIRONMENT_PARAMETERS_CHANNEL_ID,
    STATS_CHANNEL_ID,
    EngineConfig,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    Sampler,
    SamplerType,
    StatsAggregationMethod,
    StatsSideChannel,
)
from gym_unity_il.protocol.side_channels import PayloadReader, PayloadWriter, SideChannelManager, frame_messages, split_messages

# protocol.md §11, "Side-channel message setting time scale 20.0".
TIME_SCALE_20 = bytes.fromhex("2C 34 51 E9 7E 4F EA 11 B2 38 78 4F 43 87 D1 F7 08 00 00 00 02 00 00 00 00 00 A0 41")
# protocol.md §11, "Environment parameter gravity = -9.81 (FLOAT)".
GRAVITY = bytes.fromhex("1E 89 4C 53 0F 81 EA 11 A9 D0 82 24 85 86 04 00 13 00 00 00 07 00 00 00 67 72 61 76 69 74 79 00 00 00 00 C3 F5 1C C1")


def test_time_scale_message_matches_the_spec_bytes() -> None:
    channel = EngineConfigurationChannel()
    channel.set_configuration(EngineConfig(time_scale=20.0))
    assert SideChannelManager([channel]).outgoing_bytes() == TIME_SCALE_20
    [(channel_id, payload)] = split_messages(TIME_SCALE_20)
    assert channel_id == ENGINE_CONFIGURATION_CHANNEL_ID
    assert EngineConfigurationChannel.parse(payload) == {"time_scale": 20.0}


def test_float_parameter_matches_the_spec_bytes() -> None:
    channel = EnvironmentParametersChannel()
    channel.set_float_parameter("gravity", -9.81)
    assert SideChannelManager([channel]).outgoing_bytes() == GRAVITY
    [(channel_id, payload)] = split_messages(GRAVITY)
    assert channel_id == ENVIRONMENT_PARAMETERS_CHANNEL_ID
    key, value = EnvironmentParametersChannel.parse(payload)
    assert key == "gravity" and value == pytest.approx(-9.81, rel=1e-6)


def test_channel_ids_use_dotnet_guid_byte_order() -> None:
    assert TIME_SCALE_20[:16] == ENGINE_CONFIGURATION_CHANNEL_ID.bytes_le != ENGINE_CONFIGURATION_CHANNEL_ID.bytes
    # The stats id is the UUID v5 of the URL namespace and Unity's channel name.
    assert STATS_CHANNEL_ID == uuid.uuid5(uuid.NAMESPACE_URL, "com.unity.ml-agents/StatsSideChannel")


def test_every_engine_setting_round_trips_in_spec_order() -> None:
    channel = EngineConfigurationChannel()
    channel.set_configuration(
        EngineConfig.from_mapping(
            {"width": 84, "height": 64, "quality_level": 5, "time_scale": 20.0, "target_frame_rate": -1, "capture_frame_rate": 60}
        )
    )
    parsed = [EngineConfigurationChannel.parse(p) for _, p in split_messages(SideChannelManager([channel]).outgoing_bytes())]
    assert parsed == [
        {"width": 84, "height": 64},
        {"quality_level": 5},
        {"time_scale": 20.0},
        {"target_frame_rate": -1},
        {"capture_frame_rate": 60},
    ]
    assert channel.take_outgoing() == []  # the manager emptied the queue


def test_engine_config_rejects_unknown_keys_and_half_a_resolution() -> None:
    with pytest.raises(ValueError, match="timescale"):
        EngineConfig.from_mapping({"timescale": 2})
    with pytest.raises(ValueError, match="width and height"):
        EngineConfig(width=84)


def test_samplers_round_trip() -> None:
    channel = EnvironmentParametersChannel()
    channel.set_uniform_sampler_parameters("mass", 1.0, 2.0, seed=7)
    channel.set_gaussian_sampler_parameters("scale", 0.5, 0.25, seed=-3)
    channel.set_multirangeuniform_sampler_parameters("size", [(0.0, 1.0), (4.0, 6.0)], seed=11)
    parsed = [EnvironmentParametersChannel.parse(p) for _, p in split_messages(SideChannelManager([channel]).outgoing_bytes())]
    assert parsed == [
        ("mass", Sampler(SamplerType.UNIFORM, 7, (1.0, 2.0))),
        ("scale", Sampler(SamplerType.GAUSSIAN, -3, (0.5, 0.25))),
        ("size", Sampler(SamplerType.MULTIRANGEUNIFORM, 11, (0.0, 1.0, 4.0, 6.0))),
    ]


def test_set_parameter_sends_what_parse_reads_back() -> None:
    values = [("gravity", 9.5), ("mass", Sampler(SamplerType.UNIFORM, 7, (1.0, 2.0))), ("scale", Sampler(SamplerType.GAUSSIAN, -3, (0.5, 0.25))),
              ("size", Sampler(SamplerType.MULTIRANGEUNIFORM, 11, (0.0, 1.0, 4.0, 6.0)))]  # fmt: skip
    channel = EnvironmentParametersChannel()
    for key, value in values:
        channel.set_parameter(key, value)
    assert [EnvironmentParametersChannel.parse(p) for _, p in split_messages(SideChannelManager([channel]).outgoing_bytes())] == values


def test_stats_are_collected_per_key_and_cleared() -> None:
    stats = StatsSideChannel()
    manager = SideChannelManager([stats])
    data = frame_messages(
        [
            (STATS_CHANNEL_ID, StatsSideChannel.encode("reward", 1.5)),
            (STATS_CHANNEL_ID, StatsSideChannel.encode("reward", 2.5, StatsAggregationMethod.SUM)),
            (STATS_CHANNEL_ID, StatsSideChannel.encode("length", 7.0, StatsAggregationMethod.MOST_RECENT)),
        ]
    )
    manager.process_incoming(data)
    assert stats.take_stats() == {
        "reward": [(1.5, StatsAggregationMethod.AVERAGE), (2.5, StatsAggregationMethod.SUM)],
        "length": [(7.0, StatsAggregationMethod.MOST_RECENT)],
    }
    assert stats.take_stats() == {}


def test_unknown_channels_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    stats = StatsSideChannel()
    stranger = uuid.UUID("12345678-1234-5678-1234-567812345678")
    data = frame_messages([(stranger, b"\x01\x02"), (STATS_CHANNEL_ID, StatsSideChannel.encode("x", 3.0))])
    with caplog.at_level(logging.WARNING, logger="gym_unity_il.protocol.side_channels"):
        SideChannelManager([stats]).process_incoming(data)
    assert str(stranger) in caplog.text
    assert stats.take_stats() == {"x": [(3.0, StatsAggregationMethod.AVERAGE)]}


@pytest.mark.parametrize(("data", "offset"), [(TIME_SCALE_20[:5], 0), (TIME_SCALE_20[:19], 0), (TIME_SCALE_20 + TIME_SCALE_20[:27], 28)])
def test_truncated_side_channel_data_names_the_offset(data: bytes, offset: int) -> None:
    with pytest.raises(UnityProtocolError, match=f"offset {offset}"):
        split_messages(data)


def test_reader_returns_defaults_past_the_end_like_unity() -> None:
    payload = PayloadWriter().write_int32(5).write_string("ab").write_float_list([1.0, 2.0]).write_bool(True).to_bytes()
    reader = PayloadReader(payload)
    assert (reader.read_int32(), reader.read_string(), reader.read_float_list(), reader.read_bool()) == (5, "ab", [1.0, 2.0], True)
    assert (reader.read_int32(-7), reader.read_float32(0.5), reader.read_string("none")) == (-7, 0.5, "none")


def test_duplicate_channel_ids_and_non_ascii_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="share the id"):
        SideChannelManager([StatsSideChannel(), StatsSideChannel()])
    with pytest.raises(ValueError, match="ASCII"):
        EnvironmentParametersChannel().set_float_parameter("grävity", 1.0)
