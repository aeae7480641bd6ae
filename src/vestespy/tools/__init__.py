"""Helpers built on VestesPy's public API."""

from .dispatcher import Dispatcher, RouteHandler

__all__ = ["Dispatcher", "RouteHandler"]
