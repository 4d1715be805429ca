"""The network as a networkx graph: main and fed server at the base station, the cloud, edges, users."""

from __future__ import annotations

import networkx as nx
import numpy as np

from splitsim.scenarios import CellConfig, ChannelState

MAIN_SERVER = "main_server"
FED_SERVER = "fed_server"
CLOUD = "cloud"

__all__ = ["MAIN_SERVER", "FED_SERVER", "CLOUD", "user_node", "edge_node", "associate_users", "build_topology"]


def user_node(k: int) -> str:
    return f"user{k}"


def edge_node(m: int) -> str:
    return f"edge{m}"


def associate_users(user_xy_m: np.ndarray, edge_xy_m: np.ndarray) -> np.ndarray:
    """Index of the nearest edge server for each user, shape (K,); ties go to the lower index."""
    if len(edge_xy_m) == 0:
        return np.full(len(user_xy_m), -1, dtype=np.int64)
    d = np.linalg.norm(user_xy_m[:, None, :] - edge_xy_m[None, :, :], axis=2)
    return np.argmin(d, axis=1)


def build_topology(cell: CellConfig, channel: ChannelState, edge_xy_m: np.ndarray) -> nx.DiGraph:
    """Directed graph of the deployment.

    Nodes carry `kind` (server, cloud, edge, user) and `pos_m`; edges carry `kind`
    (wireless_uplink, wireless_downlink, backhaul) and `distance_m`. Users connect to the main
    and fed servers at the base station and, when there are edge servers, to their nearest edge.
    """
    g = nx.DiGraph()
    bs = tuple(channel.bs_position_m.tolist())
    g.add_node(MAIN_SERVER, kind="server", role="main", pos_m=bs)
    g.add_node(FED_SERVER, kind="server", role="fed", pos_m=bs)
    g.add_node(CLOUD, kind="cloud", pos_m=bs)
    for m, xy in enumerate(edge_xy_m):
        g.add_node(edge_node(m), kind="edge", pos_m=tuple(xy.tolist()))
        g.add_edge(edge_node(m), CLOUD, kind="backhaul")
        g.add_edge(CLOUD, edge_node(m), kind="backhaul")
    assoc = associate_users(channel.positions_m, edge_xy_m)
    for k, xy in enumerate(channel.positions_m):
        u = user_node(k)
        g.add_node(u, kind="user", pos_m=tuple(xy.tolist()), distance_m=float(channel.distance_m[k]),
                   gain_db=float(channel.gain_db[k]), edge=int(assoc[k]))
        for server in (MAIN_SERVER, FED_SERVER):
            g.add_edge(u, server, kind="wireless_uplink", distance_m=float(channel.distance_m[k]))
            g.add_edge(server, u, kind="wireless_downlink", distance_m=float(channel.distance_m[k]))
        if assoc[k] >= 0:
            e = edge_node(int(assoc[k]))
            dist = float(np.linalg.norm(xy - edge_xy_m[assoc[k]]))
            g.add_edge(u, e, kind="wireless_uplink", distance_m=dist)
            g.add_edge(e, u, kind="wireless_downlink", distance_m=dist)
    return g
