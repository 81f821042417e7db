"""The schema is the one source of defaults and allowed values, and the typed config keeps them."""

from __future__ import annotations

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from conftest import CONF_DIR, compose_config
from nmt.config.checks import ConfigError, validate_config
from nmt.config.schema import (
    DATA_SCHEMAS,
    SECTION_SCHEMAS,
    AttentionType,
    OptimSchema,
    choices,
    section_defaults,
)
from nmt.training.run_config import flatten


def test_module_tuples_of_allowed_values_come_from_the_schema():
    from nmt.baselines import naive_bayes
    from nmt.config import schema
    from nmt.data import batching, classification_batching, tokenizers
    from nmt.embeddings import io, pretrained, word2vec
    from nmt.models import classifier, seq2seq
    from nmt.modules import attention, initialization
    from nmt.tasks import optim

    assert tuple(t for t in choices(AttentionType) if t != "none") == attention.ATTENTION_TYPES
    pairs = [
        (initialization.INIT_SCHEMES, schema.InitScheme),
        (optim.SCHEDULES, schema.Schedule),
        (seq2seq.DECODER_STYLES, schema.DecoderStyle),
        (classifier.COMBINE_MODES, schema.ContextualCombine),
        (batching.BATCH_UNITS, schema.BatchUnit),
        (tokenizers.TOKENIZER_TYPES, schema.TokenizerType),
        (tokenizers.PUNCTUATION_MODES, schema.Punctuation),
        (classification_batching.TRUNCATION_MODES, schema.Truncation),
        (pretrained.UNKNOWN_INIT, schema.UnknownInit),
        (word2vec.ARCHITECTURES, schema.Word2VecArchitecture),
        (word2vec.LOSSES, schema.Word2VecLoss),
        (io.FORMATS, schema.VectorFormat),
        (naive_bayes.MODEL_TYPES, schema.BaselineType),
        (naive_bayes.FEATURES, schema.BaselineFeatures),
        (naive_bayes.ANALYZERS, schema.BaselineAnalyzer),
    ]
    for values, enum in pairs:
        assert values == choices(enum), enum.__name__


@pytest.mark.parametrize("section", ["optim", "loss", "early_stopping", "training"])
def test_the_root_configs_values_are_the_schemas_defaults(section):
    root = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))
    schema = OptimSchema if section == "optim" else SECTION_SCHEMAS[section]
    assert root[section] == section_defaults(schema)


def test_the_typed_default_config_changes_no_composed_value():
    composed = flatten(OmegaConf.to_container(compose_config()))
    typed = flatten(OmegaConf.to_container(validate_config(compose_config())))
    assert {key: typed[key] for key in composed} == composed


def test_a_key_the_yaml_leaves_out_takes_the_schemas_default():
    typed = validate_config(compose_config(["~optim.min_lr", "~loss.label_smoothing"]))
    assert typed.optim.min_lr == OptimSchema.min_lr == 1e-5
    assert typed.loss.label_smoothing == 0.1
    assert isinstance(typed.optim.schedule, str)  # plain strings, not enum members


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["+data.batch_sise=32"], "data.batch_sise"),
        (["data.batch_size=abc"], "data.batch_size"),
        (["experiment=sms_bilstm_attn", "+data.word_index_path=x.json"], "data.word_index_path"),
        (["experiment=sms_bilstm_attn", "data.truncation=middle"], "data.truncation=head or data.truncation=head_tail"),
        (["experiment=reuters_bilstm_attn", "data.format=csv"], "data.format"),
        (["data.name=wmt"], "data.name='wmt' is not a known corpus"),
        (["+trainer.max_cpu_time=00:00:01:00"], "training.max_cpu_time"),
        (["training.progress_every_n_steps=0"], "training.progress_every_n_steps"),
        (["training.max_cpu_time=30min"], "training.max_cpu_time"),
    ],
)
def test_bad_data_and_training_values_are_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        validate_config(compose_config(overrides))
    assert "\n" not in str(error.value)


def test_every_corpus_config_matches_its_schema():
    for corpus in DATA_SCHEMAS:
        assert (CONF_DIR / "data" / f"{corpus}.yaml").is_file()
    for path in (CONF_DIR / "data").glob("*.yaml"):
        assert path.stem in DATA_SCHEMAS, f"conf/data/{path.name} has no schema"


def test_the_schemas_are_registered_with_hydras_config_store():
    store = ConfigStore.instance()
    assert "default.yaml" in store.list("schema/optim")
    assert {"fra.yaml", "imdb.yaml", "reuters.yaml"} <= set(store.list("schema/data"))
    assert {"translation.yaml", "classification.yaml", "baseline.yaml"} <= set(store.list("schema/model"))
