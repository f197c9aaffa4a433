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
discrete: SpaceTypeProto
continuous: SpaceTypeProto
NONE: CompressionTypeProto
PNG: CompressionTypeProto

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
    __slots__ = ("vector_actions", "text_actions", "memories", "value")
    VECTOR_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    TEXT_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    vector_actions: _containers.RepeatedScalarFieldContainer[float]
    text_actions: str
    memories: _containers.RepeatedScalarFieldContainer[float]
    value: float
    def __init__(self, vector_actions: _Optional[_Iterable[float]] = ..., text_actions: _Optional[str] = ..., memories: _Optional[_Iterable[float]] = ..., value: _Optional[float] = ...) -> None: ...
