"""Word embeddings: training (word2vec, fastText, GloVe), file formats,
evaluation, queries, plots and debiasing.

| module | what |
|---|---|
| ``vectors`` | :class:`WordVectors`: words + matrix, nearest neighbours, analogies |
| ``io`` | read/write word2vec text and binary, GloVe text, fastText ``.vec``/``.bin`` |
| ``corpus`` | a dataset's training texts as token lists, through the ``tokenizer`` group |
| ``word2vec`` | Word2Vec (CBOW, skip-gram; negative sampling, hierarchical softmax) and FastText, by gensim |
| ``glove`` | GloVe in PyTorch: distance-weighted co-occurrences, weighted least squares, AdaGrad |
| ``evaluate`` | Google analogies, WordSim-353 (gensim's test data), nearest neighbours |
| ``pretrained`` | a vector file -> an ``nn.Embedding`` of a model, with a coverage report |
| ``plots`` | 2-D t-SNE / PCA pictures (Hangul with a CJK font) |
| ``debias`` | Bolukbasi et al.: gender direction, neutralise, equalise |
| ``__main__`` | ``python -m nmt.embeddings method=... data=...`` (Hydra, ``conf/embeddings.yaml``) |
| ``query`` | ``python -m nmt.embeddings.query VECTORS --similar WORD | --analogy A B C`` |

Importing this package imports nothing heavy: gensim and scikit-learn (the ``embeddings``
extra) are imported by the modules that need them.
"""
