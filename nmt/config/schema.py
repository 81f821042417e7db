"""The run config's schema: every default and every allowed value, in one place.

Each config group has a dataclass here; each closed set of values is an :class:`Enum` whose
member names are the values a user writes (``attention.type=dot``). Modules that accept
those values derive their tuples from the enums (:func:`choices`), so a new value is added
once. The YAML files in ``conf/`` pick values; a key they leave out takes the default here.

The schemas are registered with Hydra's ConfigStore under ``schema/<group>/<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf


def section_defaults(schema: type) -> dict[str, Any]:
    """``schema``'s defaults as the plain values a composed config holds (enums as strings)."""
    return cast(dict[str, Any], OmegaConf.to_container(OmegaConf.structured(schema), enum_to_str=True))


def choices(enum: type[Enum]) -> tuple[str, ...]:
    """The values ``enum`` allows, as the strings a config holds: ``("lstm", "gru")``."""
    return tuple(member.value for member in enum)


class Cell(str, Enum):
    lstm = "lstm"
    gru = "gru"
    rnn = "rnn"  # Elman's tanh RNN (Keras's SimpleRNN): no gates, for comparison with LSTM/GRU


class InitScheme(str, Enum):
    default = "default"  # PyTorch's own
    uniform = "uniform"
    xavier = "xavier"
    orthogonal = "orthogonal"


class AttentionType(str, Enum):
    bahdanau = "bahdanau"
    dot = "dot"
    general = "general"
    none = "none"  # a plain encoder-decoder


ATTENTION_MECHANISMS = tuple(kind for kind in choices(AttentionType) if kind != AttentionType.none.value)
"""The attention types that build an attention layer (all but ``none``)."""


class DecoderStyle(str, Enum):
    luong = "luong"  # attention after the cell
    bahdanau = "bahdanau"  # attention before it, the context into the cell


class TokenizerType(str, Enum):
    sentencepiece = "sentencepiece"
    char = "char"
    word = "word"
    morpheme = "morpheme"  # Korean morphemes (Kiwi), the korean extra


class MorphemeAnalyser(str, Enum):
    kiwi = "kiwi"  # kiwipiepy: pip install 'nmt[korean]'


class StopwordList(str, Enum):
    """The built-in stopword lists (nmt/data/korean.py), named by ``tokenizer.stopwords``."""

    course = "course"  # the NSMC course's 의 가 이 은 들 는 좀 잘 걍 과 도 를 으로 자 에 와 한 하다


class SentencePieceModel(str, Enum):
    unigram = "unigram"
    bpe = "bpe"


# A member's name is the value a user writes (OmegaConf matches enums by name), even where it
# shadows a str method: hence the type: ignore of split, strip and replace.
class Punctuation(str, Enum):
    split = "split"  # type: ignore[assignment]
    strip = "strip"  # type: ignore[assignment]
    keep = "keep"


class Schedule(str, Enum):
    none = "none"
    plateau = "plateau"
    inverse_sqrt = "inverse_sqrt"
    cosine = "cosine"


class BatchUnit(str, Enum):
    sentences = "sentences"
    tokens = "tokens"


class Truncation(str, Enum):
    head = "head"
    head_tail = "head_tail"


class LanguageSide(str, Enum):
    source = "source"
    target = "target"


class ReutersFormat(str, Enum):
    keras = "keras"  # Keras's reuters.npz and word index
    apte = "apte"  # a Reuters-21578 ApteMod directory


class ClassifierArchitecture(str, Enum):
    rnn_attention = "rnn_attention"  # TextClassifier
    conv_lstm = "conv_lstm"  # ConvLSTMClassifier


class Pooling(str, Enum):
    last = "last"  # the encoder's final state, both directions (Keras's LSTM -> Dense)
    mean = "mean"  # mean over real positions
    max = "max"  # element-wise maximum over real positions
    attention = "attention"  # a learned context vector as the query (Yang et al. 2016)
    final_state_attention = "final_state_attention"  # additive attention, the final state as the query


class ContextualCombine(str, Enum):
    concat = "concat"  # [own embedding; mix]
    replace = "replace"  # type: ignore[assignment]  # the mix alone


class VectorFormat(str, Enum):
    word2vec = "word2vec"
    word2vec_binary = "word2vec_binary"
    glove = "glove"
    fasttext = "fasttext"
    fasttext_bin = "fasttext_bin"


class VectorFormatOrAuto(str, Enum):
    auto = "auto"  # recognised from the file
    word2vec = "word2vec"
    word2vec_binary = "word2vec_binary"
    glove = "glove"
    fasttext = "fasttext"
    fasttext_bin = "fasttext_bin"


class UnknownInit(str, Enum):
    random = "random"  # normal, with the found vectors' std
    zeros = "zeros"
    mean = "mean"


class BaselineType(str, Enum):
    multinomial_nb = "multinomial_nb"
    nbsvm = "nbsvm"
    mean_vectors = "mean_vectors"  # mean word vector, logistic regression (nmt/baselines/mean_vectors.py)


class BaselineFeatures(str, Enum):
    counts = "counts"
    binary = "binary"
    tfidf = "tfidf"


class BaselineAnalyzer(str, Enum):
    word = "word"
    char_wb = "char_wb"
    char = "char"


class Word2VecArchitecture(str, Enum):
    skipgram = "skipgram"
    cbow = "cbow"


class Word2VecLoss(str, Enum):
    negative = "negative"
    hierarchical = "hierarchical"


# -- model -------------------------------------------------------------------------------------
@dataclass
class InitSchema:
    """``model.init``: weight initialisation (nmt/modules/initialization.py)."""

    scheme: InitScheme = InitScheme.default
    range: float = 0.1  # uniform: U(-range, range)
    forget_bias: float | None = 1.0  # LSTM forget-gate bias, any scheme but default; null = the scheme's


@dataclass
class PretrainedEmbeddingSchema:
    """``model.embeddings``: word vectors into the embedding layer (nmt/embeddings/pretrained.py)."""

    pretrained: str | None = None  # vector file for the (source) embedding: word2vec text/binary, GloVe, fastText
    target_pretrained: str | None = None  # translation: vector file for the target embedding
    format: VectorFormatOrAuto = VectorFormatOrAuto.auto
    freeze: bool = False  # true: the embedding is not trained
    unknown: UnknownInit = UnknownInit.random  # rows without a vector


@dataclass
class ModelSchema:
    """``model`` group when ``task: translation`` (conf/model/lstm.yaml, gru.yaml)."""

    cell: Cell = Cell.lstm
    embed_size: int = 256
    hidden_size: int = 256  # encoder output and decoder state size
    encoder_layers: int = 1
    decoder_layers: int = 1
    bidirectional: bool = True  # a bidirectional encoder splits hidden_size over directions
    dropout: float = 0.2
    recurrent_dropout: float = 0.0  # the encoder's variational dropout of its recurrent state (same units every step)
    input_feeding: bool = True
    tie_embeddings: bool = False
    decoder_style: DecoderStyle = DecoderStyle.luong
    init: InitSchema = field(default_factory=InitSchema)
    embeddings: PretrainedEmbeddingSchema = field(default_factory=PretrainedEmbeddingSchema)


@dataclass
class EncoderTransferSchema:
    init_from: str | None = None  # translation checkpoint whose source side is reused
    freeze: bool = False
    lr_scale: float = 1.0


@dataclass
class ContextualSchema:
    """``model.contextual``: ELMo-style features from a biLM checkpoint (nmt/tasks/contextual_transfer.py)."""

    bilm: str | None = None  # a task=bilm checkpoint: its layers AND its tokenizer
    freeze: bool = True  # true: the biLM is fixed (eval mode, no graph); false: fine-tuned
    lr_scale: float = 1.0  # a fine-tuned biLM learns at optim.lr * lr_scale
    combine: ContextualCombine = ContextualCombine.concat
    bilm_model: Any | None = None  # set by the run: the biLM's model config (checkpoints rebuild without the file)


@dataclass
class ClassifierModelSchema:
    """``model`` group when ``task: classification`` (conf/model/bilstm_attn.yaml)."""

    cell: Cell = Cell.lstm
    embed_size: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    recurrent_dropout: float = 0.0  # the encoder's variational dropout of its recurrent state (same units every step)
    pooling: Pooling = Pooling.attention
    attention_size: int | None = None
    architecture: ClassifierArchitecture = ClassifierArchitecture.rnn_attention
    conv_filters: int | None = None  # conv_lstm: Conv1d output channels (model=conv_lstm sets them)
    conv_kernel: int | None = None  # conv_lstm: odd width (same padding)
    pool_size: int | None = None  # conv_lstm: max-pool window and stride
    encoder: EncoderTransferSchema = field(default_factory=EncoderTransferSchema)
    init: InitSchema = field(default_factory=InitSchema)
    embeddings: PretrainedEmbeddingSchema = field(default_factory=PretrainedEmbeddingSchema)
    contextual: ContextualSchema = field(default_factory=ContextualSchema)


@dataclass
class LanguageModelSchema:
    """``model`` group when ``task: lm`` (conf/model/lstm_lm.yaml, gru_lm.yaml)."""

    cell: Cell = Cell.lstm
    embed_size: int = 256
    hidden_size: int = 512
    layers: int = 1
    dropout: float = 0.2  # on the embeddings, between layers and before the output layer
    tie_embeddings: bool = False
    init: InitSchema = field(default_factory=InitSchema)


@dataclass
class BidirectionalLanguageModelSchema:
    """``model`` group when ``task: bilm`` (conf/model/bilstm_lm.yaml)."""

    cell: Cell = Cell.lstm
    embed_size: int = 256  # must equal hidden_size: the token layer [e; e] is mixed with the LSTM layers
    hidden_size: int = 256  # per direction
    layers: int = 2
    dropout: float = 0.1  # on every layer's input and before the shared output layer
    residual: bool = True  # layers above the first add their input (ELMo)
    init: InitSchema = field(default_factory=InitSchema)


@dataclass
class BaselineModelSchema:
    """``model`` group when ``task: baseline`` (conf/model/naive_bayes.yaml, nbsvm.yaml, mean_vectors.yaml)."""

    type: BaselineType = BaselineType.multinomial_nb
    features: BaselineFeatures = BaselineFeatures.counts
    analyzer: BaselineAnalyzer = BaselineAnalyzer.word
    ngram_range: Any = field(default_factory=lambda: [1, 2])
    lowercase: bool = True
    token_pattern: str = r"(?u)\b\w+\b"
    min_df: int = 1
    max_features: int | None = None
    sublinear_tf: bool = False
    alpha: Any = field(default_factory=lambda: [1.0])  # a number or a list (a grid chosen on dev)
    C: Any = field(default_factory=lambda: [1.0])
    beta: float = 0.25
    vectors: str | None = None  # mean_vectors: the word-vector file (word2vec, GloVe, fastText)
    vectors_format: VectorFormatOrAuto = VectorFormatOrAuto.auto
    punctuation: Punctuation = Punctuation.split  # mean_vectors: how words are cut (as the vectors' tokenizer)


# -- the other groups and sections -------------------------------------------------------------
@dataclass
class AttentionSchema:
    type: AttentionType = AttentionType.bahdanau
    size: int | None = None  # additive attention's inner size; null = hidden_size


@dataclass
class TokenizerSchema:
    type: TokenizerType = TokenizerType.sentencepiece
    joint: bool = False
    vocab_size: int = 8000
    model_type: SentencePieceModel = SentencePieceModel.unigram
    character_coverage: float = 1.0
    max_sentences: int | None = None
    # Subword regularisation of the training pairs (sentencepiece unigram only): a new segmentation
    # per epoch, drawn among the sampling_nbest best with probability P^alpha; null = off (the best).
    sampling_alpha: float | None = None
    sampling_nbest: int = 16
    min_freq: int = 1
    lowercase: bool = True  # word: fold case
    punctuation: Punctuation = Punctuation.split  # word
    analyser: MorphemeAnalyser = MorphemeAnalyser.kiwi  # morpheme
    hangul_only: bool = True  # morpheme: keep only Hangul, jamo, digits and spaces before analysis
    stopwords: Any = None  # morpheme: null, a built-in list's name (course) or a list of morphemes
    tags: bool = False  # morpheme: tokens are form/TAG (하/XSV) instead of the form alone


@dataclass
class OptimSchema:
    lr: float = 1e-3
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    schedule: Schedule = Schedule.plateau
    warmup_steps: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 2  # validations without improvement before the rate is cut
    min_lr: float = 1e-5  # the floor of plateau cuts and of the cosine decay
    fused: bool = True  # one fused Adam kernel (clipping and fp16 unscaling handled by the task)


@dataclass
class LossSchema:
    label_smoothing: float = 0.1


@dataclass
class EarlyStoppingSchema:
    patience: int | None = 8  # validations without dev improvement; 0 or null: off


# -- data (conf/data/*.yaml) -------------------------------------------------------------------
@dataclass
class DataSchema:
    """The keys every corpus has."""

    name: str = "fra"
    path: str | None = None
    download: bool = False  # true: download the full corpus when it is not on disk (else the shipped copy, if any)
    strict: bool = False  # true: a malformed line is an error instead of being counted and skipped
    limit: int | None = None
    split: dict[str, float] = field(default_factory=dict)  # fractions per split name
    split_seed: int = 1234
    batch_size: int = 64  # items, or tokens when batch_unit=tokens
    batch_unit: BatchUnit = BatchUnit.sentences
    eval_batch_size: int = 200
    num_workers: int = 0
    side: LanguageSide = LanguageSide.target  # task=lm on a translation corpus: which language is modelled


@dataclass
class TranslationDataSchema(DataSchema):
    """``data=fra`` / ``data=tatoeba``: sentence pairs (a language model reads one side)."""

    max_length: int | None = 50
    language: str = "fra"  # the manythings.org pair file's language, ISO 639-3 (fra, deu, spa, ...)
    reverse: bool = False  # true: translate that language into English (the pairs' second column first)
    # one model, several directions, each source tagged with its target language (<2fr>); null = one
    directions: list[str] | None = None  # e.g. [en-fr, fr-en]; null = English -> language (or reversed)
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    split_cache: str | None = "auto"
    bleu_sentences: int | None = 1000  # null: the whole dev split


@dataclass
class ClassificationDataSchema(DataSchema):
    """``data=imdb|sms``: labelled texts (a biLM reads the texts in windows of max_length)."""

    labels: list = field(default_factory=list)  # names of label ids 0, 1, ...
    group_duplicates: bool = True
    max_tokens: int | None = 400
    truncation: Truncation = Truncation.head
    head_tokens: int | None = None
    max_length: int | None = None  # task=bilm: window length


@dataclass
class NsmcDataSchema(ClassificationDataSchema):
    test_path: str | None = None  # ratings_test.txt (data.path is ratings_train.txt)


@dataclass
class ReutersDataSchema(ClassificationDataSchema):
    format: ReutersFormat = ReutersFormat.keras
    word_index_path: str | None = None


DATA_SCHEMAS: dict[str, type] = {
    "fra": TranslationDataSchema,
    "tatoeba": TranslationDataSchema,
    "imdb": ClassificationDataSchema,
    "sms": ClassificationDataSchema,
    "nsmc": NsmcDataSchema,
    "reuters": ReutersDataSchema,
}
"""The ``data`` group's schema per corpus (``data.name``)."""


# -- nmt's own training loop (Lightning's keys stay in ``trainer``) ------------------------------
@dataclass
class TrainingSchema:
    """``training``: what nmt's loop adds to ``lightning.Trainer`` (nmt/training/trainer.py)."""

    max_cpu_time: str | None = None  # DD:HH:MM:SS of the training process's CPU time, over resumes
    save_every_minutes: float | None = 10  # also refresh last.ckpt this often (0: only at validations)
    nonfinite_patience: int = 20  # consecutive non-finite steps that stop the run (exit 1); 0 = never
    exploding_loss_factor: float = 10  # a training loss above this many times ln(outputs), a uniform guess's loss
    exploding_loss_patience: int = 20  # that many exploded steps in a row stop the run (exit 1); 0 = never
    progress_every_n_steps: int = 100  # a plain progress line this often when there is no bar
    average_last: int = 0  # N > 1 writes average.ckpt, the mean weights of the last N validations


MOVED_KEYS = {f"trainer.{key}": f"training.{key}" for key in TrainingSchema.__dataclass_fields__}
"""Keys that left Lightning's ``trainer`` group: old name -> new name."""


# -- loggers (conf/logger/*.yaml) --------------------------------------------------------------
class LoggerKind(str, Enum):
    tensorboard = "tensorboard"
    csv = "csv"  # csv/metrics.csv alone
    wandb = "wandb"  # needs the wandb package
    mlflow = "mlflow"  # needs the mlflow package


LOGGER_PACKAGES = {LoggerKind.wandb.value: "wandb", LoggerKind.mlflow.value: "mlflow"}
"""The package each optional logger needs (what ``pip install`` takes)."""


@dataclass
class LoggerSchema:
    """``logger``: where the metrics are written besides curves.jsonl (nmt/training/loggers.py)."""

    name: LoggerKind = LoggerKind.tensorboard
    csv: bool = True  # also write csv/metrics.csv
    project: str | None = None  # wandb project / mlflow experiment; null = nmt
    offline: bool = False  # wandb: write RUN/wandb for a later `wandb sync`
    tracking_uri: str | None = None  # mlflow: null = file:RUN/mlruns


SCHEMAS: dict[str, type] = {
    "model": ModelSchema,
    "attention": AttentionSchema,
    "tokenizer": TokenizerSchema,
    "optim": OptimSchema,
}
"""The sections typed by one schema for every task (``model``'s depends on the task)."""

SECTION_SCHEMAS: dict[str, type] = {
    "loss": LossSchema,
    "early_stopping": EarlyStoppingSchema,
    "training": TrainingSchema,
    "logger": LoggerSchema,
}
"""Further sections with one schema; the run config's other keys stay Hydra's and Lightning's."""

MODEL_SCHEMAS: dict[str, type] = {
    "translation": ModelSchema,
    "classification": ClassifierModelSchema,
    "lm": LanguageModelSchema,
    "bilm": BidirectionalLanguageModelSchema,
    "baseline": BaselineModelSchema,
}
"""The ``model`` group's schema per task."""


def group_schema(group: str, task: str | None = None) -> type:
    """The dataclass that types config section ``group`` (one of :data:`SCHEMAS`) for ``task``."""
    if group == "model":
        return MODEL_SCHEMAS.get(task or "translation", ModelSchema)
    return SCHEMAS[group]


# -- python -m nmt.embeddings (conf/embeddings.yaml, conf/method/) ------------------------------
@dataclass
class Word2VecSchema:
    """``method`` group for word2vec (gensim)."""

    name: str = "word2vec"
    architecture: Word2VecArchitecture = Word2VecArchitecture.skipgram
    loss: Word2VecLoss = Word2VecLoss.negative
    negative: int = 5
    dim: int = 300
    window: int = 5
    sample: float = 1e-3
    epochs: int = 5
    alpha: float = 0.025
    min_alpha: float = 1e-4
    cbow_mean: bool = True


@dataclass
class FastTextSchema(Word2VecSchema):
    name: str = "fasttext"
    min_n: int = 3
    max_n: int = 6
    bucket: int = 2_000_000


@dataclass
class GloVeSchema:
    name: str = "glove"
    dim: int = 300
    window: int = 10
    x_max: float = 100.0
    alpha: float = 0.75
    epochs: int = 25
    lr: float = 0.05
    batch_size: int = 16384


@dataclass
class SkipGramSchema:
    """``method`` group for skip-gram with negative sampling in PyTorch (nmt/embeddings/sgns.py)."""

    name: str = "sgns"
    dim: int = 300
    window: int = 5
    negative: int = 5
    sample: float = 1e-3
    epochs: int = 3
    lr: float = 0.01
    batch_size: int = 4096


@dataclass
class LsaSchema:
    """``method`` group for PPMI + truncated SVD (nmt/embeddings/lsa.py)."""

    name: str = "lsa"
    dim: int = 300
    window: int = 5
    context_alpha: float = 0.75  # context distribution smoothing of the PMI
    power: float = 0.5  # vectors U * S^power


EMBEDDING_METHODS: dict[str, type] = {
    "word2vec": Word2VecSchema,
    "fasttext": FastTextSchema,
    "glove": GloVeSchema,
    "sgns": SkipGramSchema,
    "lsa": LsaSchema,
}


def register_schemas(store: ConfigStore | None = None) -> None:
    """Register every schema with Hydra's ConfigStore as ``schema/<group>/<name>``."""
    store = store or ConfigStore.instance()
    for group, schema in {**SCHEMAS, **SECTION_SCHEMAS}.items():
        store.store(group=f"schema/{group}", name="default", node=schema)
    for task, schema in MODEL_SCHEMAS.items():
        store.store(group="schema/model", name=task, node=schema)
    for corpus, schema in DATA_SCHEMAS.items():
        store.store(group="schema/data", name=corpus, node=schema)
    for method, schema in EMBEDDING_METHODS.items():
        store.store(group="schema/method", name=method, node=schema)


register_schemas()
