import { describe, expect, it } from 'vitest'
import { sanitizePluginHtml, sanitizePluginTemplate } from './plugin-markup.js'

describe('sanitizePluginTemplate', () => {
  it('keeps Liquid logic, variables, other templates and the layout', () => {
    const source = `{% layout 'layout' %}{% block content %}{% assign n = items.size %}<h1 id="t">{{ title | upcase }}</h1>
{% for item in items %}{% if item.on %}<b>on</b>{% endif %}<a href="/plugins/x/{{ item.id }}" class="{{ item.kind }}">{{ item.name }}</a>{% endfor %}
{% render 'x/note', who: user.username %}{% endblock %}`
    expect(sanitizePluginTemplate(source)).toBe(source)
  })

  it('drops Liquid that writes unescaped, and tags it does not know', () => {
    expect(
      sanitizePluginTemplate(
        '{{ a | raw }}{{ b | escape | raw }}{%- cycle "<i>", "b" -%}{% liquid echo "<u>" %}{% echo "<u>" %}{% tablerow x in y %}{% endtablerow %}{{ c }}',
      ),
    ).toBe('{{ c }}')
  })

  it('sanitizes what a raw block holds as HTML, and shows the Liquid in it as text', () => {
    expect(sanitizePluginTemplate('{% raw %}<b>{{ "<script>x</script>" }}</b>{% endraw %}')).toBe(
      '<b>&#123;&#123; "" &#125;&#125;</b>',
    )
  })

  it('removes scripts, styles, forms, handlers and every attribute htmx reads', () => {
    expect(
      sanitizePluginTemplate(
        '<script>x()</script><style>p{}</style><p style="x" onclick="y()" hx-post="/a" data-hx-get="/b" sse-connect="/c">t</p><form action="/d"><input name="e"><button>f</button></form>',
      ),
    ).toBe('<p>t</p>f')
  })

  it('cannot forge a stand-in for a Liquid token with the characters the sanitizer uses', () => {
    expect(sanitizePluginTemplate('{{ a | raw }}<p>\uE0000\uE001</p>')).toBe('<p>0</p>')
  })

  it('never reads as Liquid a brace the sanitizer decodes or joins', () => {
    expect(sanitizePluginTemplate('&#123;&#123; x | raw &#125;&#125;')).toBe(
      '&#123;&#123; x | raw &#125;&#125;',
    )
    expect(sanitizePluginTemplate('{<x></x>{ x | raw }<!-- -->}')).toBe('&#123;&#123; x | raw &#125;&#125;')
  })

  it('keeps no Liquid when a tag of it stands inside an HTML tag, where it could end an attribute', () => {
    const breakOut = '<a title="{% if false %}">{% endif %}" hx-post="/x" hx-trigger="load" <br>x</a>'
    expect(sanitizePluginTemplate(breakOut)).toBe('<a title="">" hx-post="/x" hx-trigger="load" <br />x</a>')
    expect(sanitizePluginTemplate(`<a title="{% include 'b' %}">{{ a }}</a>`)).toBe('<a title=""></a>')
    // An output there is escaped, inside quotes: it stays.
    expect(sanitizePluginTemplate('<a title="{{ a }}">{{ b }}</a>')).toBe('<a title="{{ a }}">{{ b }}</a>')
  })

  it('shows Liquid that does not parse as text, with no Liquid left in it', () => {
    expect(sanitizePluginTemplate('<p>{{ a | raw </p>')).toBe('<p>&#123;&#123; a | raw </p>')
  })
})

describe('sanitizePluginHtml', () => {
  it('keeps inline SVG charts and links, and no data attributes (htmx reads data-hx-*)', () => {
    expect(
      sanitizePluginHtml(
        '<svg viewBox="0 0 1 1"><rect x="0" width="1" onload="x()"></rect></svg><a href="javascript:x()">a</a><a href="/p" data-hx-post="/q">b</a>',
      ),
    ).toBe('<svg viewbox="0 0 1 1"><rect x="0" width="1"></rect></svg><a>a</a><a href="/p">b</a>')
  })
})
