"""Shared-weight message-passing networks: the κ-hop backbone and the policy/critic heads."""

from gdmpo.nn.heads import CentralCritic, GraphCritic, GraphPolicy
from gdmpo.nn.message_passing import KHopNetwork, NeighbourLayer, degree_feature

__all__ = ["CentralCritic", "GraphCritic", "GraphPolicy", "KHopNetwork", "NeighbourLayer", "degree_feature"]
