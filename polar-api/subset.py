#!/usr/bin/env python3
"""Cut a subset of Polar's OpenAPI document: the given path items (all their methods, or
only the ones named), every component schema they reference (transitively), the security
schemes and tags they use, and the servers. Nothing else is changed but the title.

    python3 polar-api/subset.py FULL.json OUT.json TITLE_SUFFIX PATH[:METHOD,METHOD] ...

Example (how checkout-links-2026-04.openapi.json was made):
    python3 polar-api/subset.py openapi.json checkout-links-2026-04.openapi.json \
        "checkout-links subset" /v1/checkout-links/ /v1/checkout-links/{id}
"""
import json
import sys


def refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.add(v)
            else:
                refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    full_path, out_path, suffix, *wanted = sys.argv[1:]
    full = json.load(open(full_path))
    paths = {}
    for spec in wanted:
        path, _, methods = spec.partition(":")
        item = full["paths"][path]
        if methods:
            keep = set(methods.lower().split(","))
            item = {k: v for k, v in item.items() if k in keep or k not in
                    ("get", "post", "put", "patch", "delete", "head", "options")}
        paths[path] = item
    schemas, seen, todo = {}, set(), set()
    refs(paths, todo)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        prefix = "#/components/schemas/"
        if not ref.startswith(prefix):
            raise SystemExit(f"unsupported $ref {ref}")
        name = ref[len(prefix):]
        schemas[name] = full["components"]["schemas"][name]
        refs(schemas[name], todo)
    used_schemes, used_tags = set(), set()
    for item in paths.values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for req in op.get("security", []) or full.get("security", []):
                used_schemes.update(req)
            used_tags.update(op.get("tags", []))
    info = dict(full["info"])
    info["title"] = f"{info['title']} ({suffix})"
    out = {
        "openapi": full["openapi"],
        "info": info,
        "servers": full.get("servers", []),
        "paths": paths,
        "components": {
            "schemas": {k: schemas[k] for k in full["components"]["schemas"] if k in schemas},
            "securitySchemes": {
                k: full["components"]["securitySchemes"][k] for k in sorted(used_schemes)
            },
        },
        "tags": [t for t in full.get("tags", []) if t.get("name") in used_tags],
    }
    with open(out_path, "w") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"{out_path}: {len(paths)} path items, {len(schemas)} schemas")


if __name__ == "__main__":
    main()
