"""The host-side phases of one kvmlab dirty-log --json document, named as
parse_selftest.py names dirty_log_perf_test's."""


def kvmlab_phases(data):
    result = data["detail"]
    its = result["iterations"]
    return {
        "populate": result["populate"]["seconds"],
        "enable": result["enable"]["seconds"],
        "dirty_total": sum(i["dirtyMemorySeconds"] for i in its),
        "get_total": sum(i["getSeconds"] for i in its),
        "clear_total": sum(i.get("clearSeconds") or 0 for i in its),
        "disable": (result.get("disable") or {}).get("seconds", 0.0),
    }
