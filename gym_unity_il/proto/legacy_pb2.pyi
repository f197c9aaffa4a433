from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpaceTypeProto(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    discrete: _ClassVar[SpaceTypeProto]
    continuous: _ClassVar[SpaceTypeProto]

class CompressionTypeProto(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NONE: _ClassVar[CompressionTypeProto]
    PNG: _ClassVar[CompressionTypeProto]

class BrainTypeProto(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    Player: _ClassVar[BrainTypeProto]
    Heuristic: _ClassVar[BrainTypeProto]
    External: _ClassVar[BrainTypeProto]
    Internal: _ClassVar[BrainTypeProto]

class CommandProto(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP: _ClassVar[CommandProto]
    RESET: _ClassVar[CommandProto]
    QUIT: _ClassVar[CommandProto]
discrete: SpaceTypeProto
continuous: SpaceTypeProto
NONE: CompressionTypeProto
PNG: CompressionTypeProto
Player: BrainTypeProto
Heuristic: BrainTypeProto
External: BrainTypeProto
Internal: BrainTypeProto
STEP: CommandProto
RESET: CommandProto
QUIT: CommandProto

class ResolutionProto(_message.Message):
    __slots__ = ("width", "height", "gray_scale")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    GRAY_SCALE_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    gray_scale: bool
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., gray_scale: _Optional[bool] = ...) -> None: ...

class BrainParametersProto(_message.Message):
    __slots__ = ("vector_observation_size", "num_stacked_vector_observations", "vector_action_size", "camera_resolutions", "vector_action_descriptions", "vector_action_space_type", "brain_name", "is_training")
    VECTOR_OBSERVATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_STACKED_VECTOR_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_SIZE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_SPACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    BRAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    IS_TRAINING_FIELD_NUMBER: _ClassVar[int]
    vector_observation_size: int
    num_stacked_vector_observations: int
    vector_action_size: _containers.RepeatedScalarFieldContainer[int]
    camera_resolutions: _containers.RepeatedCompositeFieldContainer[ResolutionProto]
    vector_action_descriptions: _containers.RepeatedScalarFieldContainer[str]
    vector_action_space_type: SpaceTypeProto
    brain_name: str
    is_training: bool
    def __init__(self, vector_observation_size: _Optional[int] = ..., num_stacked_vector_observations: _Optional[int] = ..., vector_action_size: _Optional[_Iterable[int]] = ..., camera_resolutions: _Optional[_Iterable[_Union[ResolutionProto, _Mapping]]] = ..., vector_action_descriptions: _Optional[_Iterable[str]] = ..., vector_action_space_type: _Optional[_Union[SpaceTypeProto, str]] = ..., brain_name: _Optional[str] = ..., is_training: _Optional[bool] = ...) -> None: ...

class BrainParameters4Proto(_message.Message):
    __slots__ = ("vector_observation_size", "num_stacked_vector_observations", "vector_action_size", "camera_resolutions", "vector_action_descriptions", "vector_action_space_type", "vector_observation_space_type", "brain_name", "brain_type")
    VECTOR_OBSERVATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_STACKED_VECTOR_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_SIZE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_SPACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_OBSERVATION_SPACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    BRAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    BRAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    vector_observation_size: int
    num_stacked_vector_observations: int
    vector_action_size: int
    camera_resolutions: _containers.RepeatedCompositeFieldContainer[ResolutionProto]
    vector_action_descriptions: _containers.RepeatedScalarFieldContainer[str]
    vector_action_space_type: SpaceTypeProto
    vector_observation_space_type: SpaceTypeProto
    brain_name: str
    brain_type: BrainTypeProto
    def __init__(self, vector_observation_size: _Optional[int] = ..., num_stacked_vector_observations: _Optional[int] = ..., vector_action_size: _Optional[int] = ..., camera_resolutions: _Optional[_Iterable[_Union[ResolutionProto, _Mapping]]] = ..., vector_action_descriptions: _Optional[_Iterable[str]] = ..., vector_action_space_type: _Optional[_Union[SpaceTypeProto, str]] = ..., vector_observation_space_type: _Optional[_Union[SpaceTypeProto, str]] = ..., brain_name: _Optional[str] = ..., brain_type: _Optional[_Union[BrainTypeProto, str]] = ...) -> None: ...

class BrainParameters5Proto(_message.Message):
    __slots__ = ("vector_observation_size", "num_stacked_vector_observations", "vector_action_size", "camera_resolutions", "vector_action_descriptions", "vector_action_space_type", "brain_name", "brain_type")
    VECTOR_OBSERVATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_STACKED_VECTOR_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_SIZE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_ACTION_SPACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    BRAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    BRAIN_TYPE_FIELD_NUMBER: _ClassVar[int]
    vector_observation_size: int
    num_stacked_vector_observations: int
    vector_action_size: _containers.RepeatedScalarFieldContainer[int]
    camera_resolutions: _containers.RepeatedCompositeFieldContainer[ResolutionProto]
    vector_action_descriptions: _containers.RepeatedScalarFieldContainer[str]
    vector_action_space_type: SpaceTypeProto
    brain_name: str
    brain_type: BrainTypeProto
    def __init__(self, vector_observation_size: _Optional[int] = ..., num_stacked_vector_observations: _Optional[int] = ..., vector_action_size: _Optional[_Iterable[int]] = ..., camera_resolutions: _Optional[_Iterable[_Union[ResolutionProto, _Mapping]]] = ..., vector_action_descriptions: _Optional[_Iterable[str]] = ..., vector_action_space_type: _Optional[_Union[SpaceTypeProto, str]] = ..., brain_name: _Optional[str] = ..., brain_type: _Optional[_Union[BrainTypeProto, str]] = ...) -> None: ...

class CompressedObservationProto(_message.Message):
    __slots__ = ("shape", "compression_type", "data")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    compression_type: CompressionTypeProto
    data: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., compression_type: _Optional[_Union[CompressionTypeProto, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class CustomObservationProto(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentInfoProto(_message.Message):
    __slots__ = ("stacked_vector_observation", "visual_observations", "text_observation", "stored_vector_actions", "stored_text_actions", "memories", "reward", "done", "max_step_reached", "id", "action_mask", "custom_observation", "compressed_observations")
    STACKED_VECTOR_OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    VISUAL_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    TEXT_OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    STORED_VECTOR_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    STORED_TEXT_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    MAX_STEP_REACHED_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_MASK_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    stacked_vector_observation: _containers.RepeatedScalarFieldContainer[float]
    visual_observations: _containers.RepeatedScalarFieldContainer[bytes]
    text_observation: str
    stored_vector_actions: _containers.RepeatedScalarFieldContainer[float]
    stored_text_actions: str
    memories: _containers.RepeatedScalarFieldContainer[float]
    reward: float
    done: bool
    max_step_reached: bool
    id: int
    action_mask: _containers.RepeatedScalarFieldContainer[bool]
    custom_observation: CustomObservationProto
    compressed_observations: _containers.RepeatedCompositeFieldContainer[CompressedObservationProto]
    def __init__(self, stacked_vector_observation: _Optional[_Iterable[float]] = ..., visual_observations: _Optional[_Iterable[bytes]] = ..., text_observation: _Optional[str] = ..., stored_vector_actions: _Optional[_Iterable[float]] = ..., stored_text_actions: _Optional[str] = ..., memories: _Optional[_Iterable[float]] = ..., reward: _Optional[float] = ..., done: _Optional[bool] = ..., max_step_reached: _Optional[bool] = ..., id: _Optional[int] = ..., action_mask: _Optional[_Iterable[bool]] = ..., custom_observation: _Optional[_Union[CustomObservationProto, _Mapping]] = ..., compressed_observations: _Optional[_Iterable[_Union[CompressedObservationProto, _Mapping]]] = ...) -> None: ...

class AgentActionProto(_message.Message):
    __slots__ = ("vector_actions", "text_actions", "memories", "value", "custom_action")
    VECTOR_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    TEXT_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_ACTION_FIELD_NUMBER: _ClassVar[int]
    vector_actions: _containers.RepeatedScalarFieldContainer[float]
    text_actions: str
    memories: _containers.RepeatedScalarFieldContainer[float]
    value: float
    custom_action: CustomActionProto
    def __init__(self, vector_actions: _Optional[_Iterable[float]] = ..., text_actions: _Optional[str] = ..., memories: _Optional[_Iterable[float]] = ..., value: _Optional[float] = ..., custom_action: _Optional[_Union[CustomActionProto, _Mapping]] = ...) -> None: ...

class CustomActionProto(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeaderProto(_message.Message):
    __slots__ = ("status", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: int
    message: str
    def __init__(self, status: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class UnityMessageProto(_message.Message):
    __slots__ = ("header", "unity_output", "unity_input")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    UNITY_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    UNITY_INPUT_FIELD_NUMBER: _ClassVar[int]
    header: HeaderProto
    unity_output: UnityOutputProto
    unity_input: UnityInputProto
    def __init__(self, header: _Optional[_Union[HeaderProto, _Mapping]] = ..., unity_output: _Optional[_Union[UnityOutputProto, _Mapping]] = ..., unity_input: _Optional[_Union[UnityInputProto, _Mapping]] = ...) -> None: ...

class UnityOutputProto(_message.Message):
    __slots__ = ("rl_output", "rl_initialization_output")
    RL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    RL_INITIALIZATION_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    rl_output: UnityRLOutputProto
    rl_initialization_output: UnityRLInitializationOutputProto
    def __init__(self, rl_output: _Optional[_Union[UnityRLOutputProto, _Mapping]] = ..., rl_initialization_output: _Optional[_Union[UnityRLInitializationOutputProto, _Mapping]] = ...) -> None: ...

class UnityInputProto(_message.Message):
    __slots__ = ("rl_input", "rl_initialization_input")
    RL_INPUT_FIELD_NUMBER: _ClassVar[int]
    RL_INITIALIZATION_INPUT_FIELD_NUMBER: _ClassVar[int]
    rl_input: UnityRLInputProto
    rl_initialization_input: UnityRLInitializationInputProto
    def __init__(self, rl_input: _Optional[_Union[UnityRLInputProto, _Mapping]] = ..., rl_initialization_input: _Optional[_Union[UnityRLInitializationInputProto, _Mapping]] = ...) -> None: ...

class UnityRLInitializationInputProto(_message.Message):
    __slots__ = ("seed",)
    SEED_FIELD_NUMBER: _ClassVar[int]
    seed: int
    def __init__(self, seed: _Optional[int] = ...) -> None: ...

class UnityRLInitializationOutputProto(_message.Message):
    __slots__ = ("name", "version", "log_path", "brain_parameters", "environment_parameters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOG_PATH_FIELD_NUMBER: _ClassVar[int]
    BRAIN_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    log_path: str
    brain_parameters: _containers.RepeatedCompositeFieldContainer[BrainParametersProto]
    environment_parameters: EnvironmentParametersProto
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., log_path: _Optional[str] = ..., brain_parameters: _Optional[_Iterable[_Union[BrainParametersProto, _Mapping]]] = ..., environment_parameters: _Optional[_Union[EnvironmentParametersProto, _Mapping]] = ...) -> None: ...

class CustomResetParametersProto(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnvironmentParametersProto(_message.Message):
    __slots__ = ("float_parameters", "custom_reset_parameters")
    class FloatParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FLOAT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_RESET_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    float_parameters: _containers.ScalarMap[str, float]
    custom_reset_parameters: CustomResetParametersProto
    def __init__(self, float_parameters: _Optional[_Mapping[str, float]] = ..., custom_reset_parameters: _Optional[_Union[CustomResetParametersProto, _Mapping]] = ...) -> None: ...

class UnityRLInputProto(_message.Message):
    __slots__ = ("agent_actions", "environment_parameters", "is_training", "command")
    class ListAgentActionProto(_message.Message):
        __slots__ = ("value",)
        VALUE_FIELD_NUMBER: _ClassVar[int]
        value: _containers.RepeatedCompositeFieldContainer[AgentActionProto]
        def __init__(self, value: _Optional[_Iterable[_Union[AgentActionProto, _Mapping]]] = ...) -> None: ...
    class AgentActionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: UnityRLInputProto.ListAgentActionProto
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[UnityRLInputProto.ListAgentActionProto, _Mapping]] = ...) -> None: ...
    AGENT_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    IS_TRAINING_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    agent_actions: _containers.MessageMap[str, UnityRLInputProto.ListAgentActionProto]
    environment_parameters: EnvironmentParametersProto
    is_training: bool
    command: CommandProto
    def __init__(self, agent_actions: _Optional[_Mapping[str, UnityRLInputProto.ListAgentActionProto]] = ..., environment_parameters: _Optional[_Union[EnvironmentParametersProto, _Mapping]] = ..., is_training: _Optional[bool] = ..., command: _Optional[_Union[CommandProto, str]] = ...) -> None: ...

class UnityRLOutputProto(_message.Message):
    __slots__ = ("global_done", "agentInfos")
    class ListAgentInfoProto(_message.Message):
        __slots__ = ("value",)
        VALUE_FIELD_NUMBER: _ClassVar[int]
        value: _containers.RepeatedCompositeFieldContainer[AgentInfoProto]
        def __init__(self, value: _Optional[_Iterable[_Union[AgentInfoProto, _Mapping]]] = ...) -> None: ...
    class AgentInfosEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: UnityRLOutputProto.ListAgentInfoProto
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[UnityRLOutputProto.ListAgentInfoProto, _Mapping]] = ...) -> None: ...
    GLOBAL_DONE_FIELD_NUMBER: _ClassVar[int]
    AGENTINFOS_FIELD_NUMBER: _ClassVar[int]
    global_done: bool
    agentInfos: _containers.MessageMap[str, UnityRLOutputProto.ListAgentInfoProto]
    def __init__(self, global_done: _Optional[bool] = ..., agentInfos: _Optional[_Mapping[str, UnityRLOutputProto.ListAgentInfoProto]] = ...) -> None: ...

class LegacyHandshakeProto(_message.Message):
    __slots__ = ("header", "unity_output")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    UNITY_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    header: HeaderProto
    unity_output: LegacyHandshakeOutputProto
    def __init__(self, header: _Optional[_Union[HeaderProto, _Mapping]] = ..., unity_output: _Optional[_Union[LegacyHandshakeOutputProto, _Mapping]] = ...) -> None: ...

class LegacyHandshakeOutputProto(_message.Message):
    __slots__ = ("rl_initialization_output",)
    RL_INITIALIZATION_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    rl_initialization_output: LegacyHandshakeInitializationProto
    def __init__(self, rl_initialization_output: _Optional[_Union[LegacyHandshakeInitializationProto, _Mapping]] = ...) -> None: ...

class LegacyHandshakeInitializationProto(_message.Message):
    __slots__ = ("name", "version", "log_path", "brain_parameters", "environment_parameters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOG_PATH_FIELD_NUMBER: _ClassVar[int]
    BRAIN_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    log_path: str
    brain_parameters: _containers.RepeatedScalarFieldContainer[bytes]
    environment_parameters: EnvironmentParametersProto
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., log_path: _Optional[str] = ..., brain_parameters: _Optional[_Iterable[bytes]] = ..., environment_parameters: _Optional[_Union[EnvironmentParametersProto, _Mapping]] = ...) -> None: ...
