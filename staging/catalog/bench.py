"""``staging bench retrieval``: build time, memory, latency and recall of the vector search.

The data are synthetic but shaped like real product embeddings, which are neither uniform on
the sphere nor isotropic inside a category:

* ``clusters`` (default 1000) centres drawn from a standard normal in ``dim`` dimensions
  (think: product types);
* every vector is its centre, plus a variation inside a random ``intrinsic``-dimensional
  subspace of its own cluster (default 32-d, std ``spread``: the ways products of one type
  differ), plus small isotropic noise (std ``noise``: everything else), then L2-normalised;
* cluster sizes follow a Zipf-like law (a few big categories, a long tail), and the queries
  are fresh points drawn the same way (not copies of database vectors).

With the defaults, a vector's cosine to its own centre is ~0.7 and to another centre ~0;
the 10 nearest neighbours of a query are nearly always in its cluster, but which 10 depends
on the within-cluster variation, so the task is not trivial.

Reported per index type: build seconds (all cores), index bytes (serialised size), process RSS
after the build, p50/p99 latency of single-vector queries (``k`` = 10, one query per call, as
a web request would do; on ``query_threads`` threads, default 1: OpenMP on a single query
costs more in synchronisation than it gains, and a server runs one request per core), and
recall@k against exact search (share of the true top-k found).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from staging.catalog.vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
from staging.errors import StagingError

INDEX_KINDS = ("exact", "hnsw", "hnsw_sq")


def synthetic_vectors(
    n: int,
    dim: int,
    clusters: int = 1000,
    intrinsic: int = 32,
    spread: float = 0.9,
    noise: float = 0.25,
    seed: int = 0,
    chunk: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, dim)`` unit ``float32`` vectors as described in the module docstring, and the
    cluster of each."""
    rng = np.random.default_rng(seed)
    clusters = max(1, min(clusters, n))
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    intrinsic = max(1, min(intrinsic, dim))
    bases = rng.standard_normal((clusters, intrinsic, dim)).astype(np.float32)
    bases /= np.linalg.norm(bases, axis=2, keepdims=True)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.5  # Zipf-like category sizes
    labels = rng.choice(clusters, size=n, p=weights / weights.sum()).astype(np.int32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        lab = labels[start : start + chunk]
        m = len(lab)
        coef = rng.standard_normal((m, intrinsic)).astype(np.float32) * (
            spread / np.sqrt(intrinsic)
        )
        x = centres[lab] + np.einsum("mi,mid->md", coef, bases[lab])
        x += rng.standard_normal((m, dim)).astype(np.float32) * (noise / np.sqrt(dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + m] = x
    return out, labels


def rss_bytes() -> int:
    """Current resident set size of this process (0 where unknown)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _build(kind: str, data: np.ndarray, m: int, ef_construction: int) -> Any:
    import faiss

    dim = data.shape[1]
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    elif kind == "hnsw_sq":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.train(data[: min(len(data), 100_000)])
    else:
        raise StagingError(f"Unknown index kind {kind!r}; use {', '.join(INDEX_KINDS)}.")
    for start in range(0, len(data), 50_000):
        index.add(data[start : start + 50_000])
    return index


def _latencies(index: Any, queries: np.ndarray, k: int, params: Any) -> np.ndarray:
    times = np.empty(len(queries))
    for i in range(len(queries)):
        q = queries[i : i + 1]
        t0 = time.perf_counter()
        index.search(q, k, params=params)
        times[i] = time.perf_counter() - t0
    return times


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found, truth, strict=True))
    return hits / (k * len(truth))


def bench_retrieval(
    n: int = 1_000_000,
    dim: int = 512,
    queries: int = 1000,
    k: int = 10,
    kinds: tuple[str, ...] = ("exact", "hnsw"),
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: tuple[int, ...] = (HNSW_EF_SEARCH,),
    exact_latency_queries: int = 200,
    clusters: int = 1000,
    seed: int = 0,
    threads: int | None = None,
    query_threads: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Benchmark exact and approximate search on :func:`synthetic_vectors` (see the module
    docstring). Returns a JSON-able dict; ``results`` has one entry per index kind and
    ``efSearch`` value."""
    import faiss

    if n < k or queries < 1:
        raise StagingError(f"need n >= k ({k}) and at least one query")
    if threads:
        faiss.omp_set_num_threads(threads)
    build_threads = faiss.omp_get_max_threads()
    say = (lambda *a: print(*a, flush=True)) if progress else (lambda *a: None)
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    data, _ = synthetic_vectors(n + queries, dim, clusters=clusters, seed=seed)
    base, qs = data[:n], np.ascontiguousarray(data[n:])
    report: dict[str, Any] = {
        "n": n,
        "dim": dim,
        "queries": queries,
        "k": k,
        "clusters": clusters,
        "build_threads": build_threads,
        "query_threads": query_threads,
        "data_seconds": round(time.perf_counter() - t0, 2),
        "data_bytes": int(base.nbytes),
        "results": [],
    }
    say(f"data: {n} x {dim} in {report['data_seconds']} s")

    # Ground truth: exact batched search (BLAS), also the exact index of the table.
    t0 = time.perf_counter()
    exact = _build("exact", base, m, ef_construction)
    exact_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, truth = exact.search(qs, k)
    report["ground_truth_seconds"] = round(time.perf_counter() - t0, 2)

    for kind in kinds:
        if kind == "exact":
            index, build = exact, exact_build
        else:
            say(f"building {kind} (M={m}, efConstruction={ef_construction}) ...")
            t0 = time.perf_counter()
            index = _build(kind, base, m, ef_construction)
            build = time.perf_counter() - t0
        index_bytes = int(faiss.serialize_index(index).nbytes)
        settings = [None] if kind == "exact" else list(ef_search)
        for ef in settings:
            params = None if ef is None else faiss.SearchParametersHNSW(efSearch=max(ef, k))
            nq = min(queries, exact_latency_queries) if kind == "exact" else queries
            faiss.omp_set_num_threads(query_threads)
            index.search(qs[:10], k, params=params)  # warm-up
            lat = _latencies(index, qs[:nq], k, params)
            faiss.omp_set_num_threads(build_threads)
            _, found = index.search(qs, k, params=params)
            row = {
                "index": kind,
                "M": None if kind == "exact" else m,
                "efConstruction": None if kind == "exact" else ef_construction,
                "efSearch": ef,
                "build_seconds": round(build, 2),
                "index_bytes": index_bytes,
                "rss_bytes": rss_bytes(),
                "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
                "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
                "latency_queries": nq,
                f"recall@{k}": round(_recall(found, truth), 4),
            }
            report["results"].append(row)
            say(
                f"{kind:8} ef={ef!s:5} build {row['build_seconds']:8.1f} s  "
                f"{index_bytes / 2**20:8.0f} MiB  p50 {row['p50_ms']:7.3f} ms  "
                f"p99 {row['p99_ms']:7.3f} ms  recall@{k} {row[f'recall@{k}']:.4f}"
            )
        if index is not exact:
            del index
    report["rss_start_bytes"] = rss0
    report["rss_end_bytes"] = rss_bytes()
    return report


__all__ = ["INDEX_KINDS", "bench_retrieval", "rss_bytes", "synthetic_vectors"]
