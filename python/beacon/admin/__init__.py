"""The admin listener: /healthz, /stats, /metrics, /info, /debug/*. Loopback only unless
the config says otherwise; never on the public port."""
