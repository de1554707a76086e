"""GET /docs: the OpenAPI description as one self-contained HTML page (no scripts, no external
resources), in Chinese and English. Pure: the app renders it once at start and keeps it."""

from __future__ import annotations

import html
import json
from typing import Any

from ledger.intake import openapi


def _type_label(s: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in s:
        name = s["$ref"].rsplit("/", 1)[-1]
        target = components[name]
        if "enum" in target:
            return "enum: " + " | ".join(target["enum"])
        return f'<a href="#{name}">{name}</a>'
    if "allOf" in s:
        return " & ".join(_type_label(x, components) for x in s["allOf"] if "$ref" in x) or "object"
    if "anyOf" in s or "oneOf" in s:
        return " | ".join(_type_label(x, components) for x in s.get("anyOf", s.get("oneOf", [])))
    if "const" in s:
        return f"= {html.escape(json.dumps(s['const'], ensure_ascii=False))}"
    t = s.get("type", "any")
    kinds = t if isinstance(t, list) else [t]
    out = []
    for k in kinds:
        if k == "array":
            out.append("array of " + _type_label(s.get("items", {}), components))
        elif k == "string" and "format" in s:
            out.append({"date": "date (YYYY-MM-DD)", "date-time": "date-time (RFC 3339)"}.get(s["format"], s["format"]))
        elif k == "integer" and "format" in s:
            out.append(f"integer ({s['format']})")
        elif k == "string" and s.get("contentEncoding") == "base64":
            out.append("string (base64)")
        else:
            out.append(str(k))
    return " | ".join(out)


def _rows(schema: dict[str, Any], components: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = prefix + name
        rows.append(f"<tr><td><code>{html.escape(path)}</code></td><td>{_type_label(prop, components)}</td>"
                    f"<td>{'是 required' if name in required else '否 optional'}</td>"
                    f"<td>{html.escape(str(prop.get('description', '')))}"
                    f"{' (default ' + html.escape(json.dumps(prop['default'], ensure_ascii=False)) + ')' if 'default' in prop and prop['default'] is not None else ''}</td></tr>")
        inner = prop
        if inner.get("type") == "array" and "$ref" in inner.get("items", {}):
            inner, path = inner["items"], path + "[]"
        ref = inner.get("$ref")
        if ref and "properties" in components[ref.rsplit("/", 1)[-1]] and not ref.endswith("EnvelopeV1"):
            rows += _rows(components[ref.rsplit("/", 1)[-1]], components, path + ".")
    return rows


def _table(schema: dict[str, Any], components: dict[str, Any]) -> str:
    return ("<table><thead><tr><th>字段 field</th><th>类型 type</th><th>必填 required</th><th>说明 description</th>"
            "</tr></thead><tbody>" + "".join(_rows(schema, components)) + "</tbody></table>")


def render() -> str:
    """The page, from the OpenAPI description of ledger/intake/openapi.py."""
    doc = openapi.document()
    comps = doc["components"]["schemas"]
    esc = html.escape
    parts = [
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{esc(doc['info']['title'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;"
        "margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.25em .5em;vertical-align:top;text-align:left}"
        "th{background:#eee}code{font-size:95%}h3{margin-top:2em}</style></head><body>",
        f"<h1>{esc(doc['info']['title'])}</h1><p>{esc(doc['info']['description'])}</p>",
        "<p>机器可读的描述 (machine-readable description): <a href=\"/openapi.json\">/openapi.json</a> "
        f"(OpenAPI {esc(doc['openapi'])})</p>",
        "<h2>接口 Routes</h2><table><thead><tr><th>method</th><th>path</th><th>summary</th><th>responses</th>"
        "</tr></thead><tbody>"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = "<br>".join(f"{esc(code)}: {esc(r['description'])}" for code, r in op["responses"].items())
            parts.append(f"<tr><td>{method.upper()}</td><td><code>{esc(path)}</code></td><td>{esc(op['summary'])}"
                         f"<br><small>{esc(op.get('description', ''))}</small></td><td>{responses}</td></tr>")
    parts.append("</tbody></table>")
    parts.append('<h2 id="EnvelopeV1">事件信封 EnvelopeV1 (every event)</h2>'
                 f"<p>{esc(comps['EnvelopeV1'].get('description', ''))}</p>{_table(comps['EnvelopeV1'], comps)}")
    parts.append("<h2>事件类型 Event families</h2><ul>")
    names = [ref["$ref"].rsplit("/", 1)[-1] for ref in comps["Submission"]["oneOf"]]
    parts += [f'<li><a href="#{n}">{n}</a></li>' for n in names]
    parts.append("</ul>")
    for n in names:
        parts.append(f'<h3 id="{n}">{n}</h3><p>{esc(comps[n].get("description", ""))}</p>'
                     f"<p><code>envelope.event_type</code> = <code>{n}</code></p>{_table(comps[n], comps)}")
    parts.append(f'<h2 id="Outcome">结果 Outcome</h2><p>{esc(comps["Outcome"].get("description", ""))}</p>'
                 f"{_table(comps['Outcome'], comps)}")
    for n in ("Pending", "BatchResult", "Refusal", "BatchRefusal", "Problem", "BatchProblem"):
        parts.append(f'<h3 id="{n}">{n}</h3><p>{esc(comps[n].get("description", ""))}</p>{_table(comps[n], comps)}')
    parts.append("</body></html>")
    return "".join(parts)
