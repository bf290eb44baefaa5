"""Thin views: parse the request, call one service or selector, render a page or a fragment."""
