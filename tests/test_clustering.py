import numpy as np
import pytest

from colorize_tf import clustering as C


def blobs(n_per=30, centres=((0, 0), (10, 0), (0, 10)), seed=0):
    rng = np.random.default_rng(seed)
    pts, ids = [], []
    for c, (x, y) in enumerate(centres):
        pts.append(rng.normal([x, y], 0.5, (n_per, 2)))
        ids += [f"b{c}_{i:02d}" for i in range(n_per)]
    return ids, np.concatenate(pts).astype(np.float32)


def test_mu_from_equation_3():
    nw = C.regressor_weights(114)
    assert nw == 114 * 57 + 57 + 2 * (57 * 57 + 57) + 57 * 2 + 2
    assert C.minimal_cluster_size(114, 2048, alpha=12.5) == int(np.ceil(12.5 * nw / 2048))


def test_layers_prune_by_threshold_and_stop():
    ids, x = blobs()
    calls = []

    def train_layer(clusters):
        calls.append(clusters)
        # images of blob 0 are easy (30 dB), the others hard (20 dB), except on layer 1 where blob 1 gets easy
        out = {}
        for c in clusters:
            for i in c.members:
                easy = i.startswith("b0") or (c.layer >= 1 and i.startswith("b1"))
                out[i] = 30.0 if easy else 20.0
        return out

    clusters, reports = C.adaptive_clustering(ids, x, None, train_layer, n0=3, mu=20, epsilon_db=-26.0, max_layers=5)
    # layer 0: 90 images in 3 clusters (the blobs); blob 0 leaves
    assert reports[0].images == 90 and sorted(reports[0].sizes) == [30, 30, 30] and reports[0].removed == 30
    # layer 1: 60 images, 60 // 20 = 3 clusters; blob 1 leaves
    assert reports[1].images == 60 and len(reports[1].clusters) == 3 and reports[1].removed == 30
    # layer 2: 30 images >= mu: 1 cluster; nothing reaches the threshold -> stop
    assert reports[2].images == 30 and len(reports[2].clusters) == 1 and reports[2].removed == 0
    assert len(reports) == 3 and len(clusters) == 3 + 3 + 1
    # each blob is one layer-0 cluster
    for c in clusters[:3]:
        assert len({m.split("_")[0] for m in c.members}) == 1
    assert all(c.cluster_id.startswith(f"L{c.layer}C") for c in clusters)


def test_stops_when_fewer_than_mu_remain():
    ids, x = blobs(n_per=10)

    def train_layer(clusters):
        return {i: (30.0 if not i.startswith("b2") else 20.0) for c in clusters for i in c.members}

    clusters, reports = C.adaptive_clustering(ids, x, None, train_layer, n0=24, mu=15, max_layers=5)
    # small set: layer 0 gets 30 // 15 = 2 clusters, not 24; 10 images remain < mu -> stop
    assert len(reports) == 1 and len(reports[0].clusters) == 2 and reports[0].removed == 20


def test_missing_psnr_is_an_error_only_beyond_the_threshold():
    ids, x = blobs(n_per=5)
    with pytest.raises(RuntimeError, match="no PSNR measured for 15 of 15"):
        C.adaptive_clustering(ids, x, None, lambda cl: {}, n0=2, mu=3)
    lost = {"b0_00"}  # one unreadable reference image: counted, reported, and it leaves the set

    def measure(clusters):
        return {m: 30.0 if m.startswith("b1") else 20.0 for c in clusters for m in c.members if m not in lost}

    clusters, reports = C.adaptive_clustering(ids, x, None, measure, n0=3, mu=3, epsilon_db=-26.0, max_layers=2)
    assert reports[0].unmeasured == 1 and reports[0].images == 15 and reports[0].removed == 5
    assert reports[1].images == 9 and "b0_00" not in {m for c in clusters if c.layer == 1 for m in c.members}


def test_selection_rule():
    def mk(cid, centre, hist):
        return C.Cluster(
            cid,
            0,
            [],
            np.array(centre, np.float32),
            None if hist is None else np.array(hist, np.float32),
        )

    clusters = [mk("a", [0, 0], [1, 0, 0]), mk("b", [1, 0], [0, 1, 0]), mk("c", [5, 5], [0, 0, 1])]
    g = np.array([0.2, 0.0])
    assert C.select_cluster(g, [0, 1, 0], clusters, k=1) == 0  # GIST only: nearest centre
    assert C.select_cluster(g, [0, 1, 0], clusters, k=2) == 1  # histogram decides among the 2 nearest
    assert C.select_cluster(g, [0, 0, 1], clusters, k=2) in (0, 1)  # "c" is not among the 2 nearest
    assert C.select_cluster(g, [0, 0, 1], clusters, k=3) == 2
    assert C.select_cluster(g, None, clusters, k=3) == 0  # no histogram: GIST only


def test_cluster_json_round_trip():
    c = C.Cluster("L1C02", 1, ["x", "y"], np.arange(4, dtype=np.float32), np.array([0.5, 0.5], np.float32))
    d = C.Cluster.from_json(c.to_json())
    assert d.cluster_id == "L1C02" and d.members == ["x", "y"] and np.allclose(d.centre, c.centre)
    assert np.allclose(d.semantic_hist, [0.5, 0.5])


def test_clustered_colorizer_selects_by_semantic_histogram_among_gist_neighbours():
    """Inside the bundle colorizer: top-k by GIST, then the semantic histogram of the parser's output decides."""
    from types import SimpleNamespace

    from colorize_tf.clustering import Cluster
    from colorize_tf.colorize import ClusteredColorizer
    from colorize_tf.gist import gist
    from colorize_tf.refine import RefineParams

    gray = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    g = gist(gray, 64)
    probs = np.zeros((48, 64, 3), np.float32)
    probs[..., 2] = 1.0  # the parser sees class 2 everywhere
    near_wrong = Cluster("L0C00", 0, ["a"], g + 0.01, np.array([1.0, 0.0, 0.0], np.float32))
    near_right = Cluster("L0C01", 0, ["b"], g + 0.02, np.array([0.0, 0.1, 0.9], np.float32))
    far_right = Cluster("L0C02", 0, ["c"], g + 5.0, np.array([0.0, 0.0, 1.0], np.float32))
    desc = SimpleNamespace(names=["patch", "semantic"])
    clusters = [near_wrong, near_right, far_right]
    pick = ClusteredColorizer("unused", desc, clusters, RefineParams(), k=2, gist_size=64).select
    assert pick(gray, [None, probs]) == "L0C01"  # among the 2 nearest, the matching histogram wins
    gist_only = ClusteredColorizer("unused", desc, clusters, RefineParams(), k=1, gist_size=64).select
    assert gist_only(gray, [None, probs]) == "L0C00"  # k = 1: GIST alone
    assert ClusteredColorizer("unused", desc, [], RefineParams()).select(gray, [None, probs]) == "root"
