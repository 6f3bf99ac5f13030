"""The benchmark suite: ``python -m benchmarks [--quick] [--only NAMES] [--device cpu|cuda]``.

Each ``bench_<name>.py`` module exposes ``run(ctx: Context) -> list[Comparison]``. Every figure is
a ratio against a baseline measured in the same process (the machines are noisy; a lone absolute
time means little), and streaming operations also report their time against one plain copy of
the same data, the memory-bandwidth ceiling.
"""
