import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# JAX (realmodel): CPU only, one Eigen thread, so tests are reproducible and share the machine
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bert_folder(tmp_path_factory):
    """A random BERT of 3 layers and 4 heads (hidden 16) saved as a safetensors folder, with
    MiniLM's vocabulary size and 256 positions so that the shipped tokenizer and the probes'
    texts fit: the stand-in for "another BERT-family model" (issue 23, item 6)."""
    from realmodel.weights import random_bert, save_bert

    folder = tmp_path_factory.mktemp("tinybert")
    save_bert(random_bert(n_layers=3, hidden=16, n_heads=4, intermediate=32,
                          vocab_size=30522, max_positions=256, seed=5), folder)
    return folder
