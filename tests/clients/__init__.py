"""Tests with real HTTP clients: Chromium, curl, ab, Go, Node, requests, httpx."""
