import type { Total } from './event-store.js'

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  )
}

const barWidth = 24
const gap = 8
const chartHeight = 80
const labelHeight = 14

/**
 * A bar chart as inline SVG, one bar per total, each with its count as a tooltip: no script, no
 * stylesheet, no external asset, so it renders inside any host page.
 */
export function barChartSvg(totals: readonly Total[], title: string): string {
  const max = Math.max(1, ...totals.map((t) => t.total))
  const width = Math.max(1, totals.length * (barWidth + gap) - gap)
  const bars = totals.map((t, i) => {
    const height = Math.max(1, Math.round((t.total / max) * chartHeight))
    const x = i * (barWidth + gap)
    const label = escapeHtml(t.label)
    return (
      `<rect x="${x}" y="${chartHeight - height}" width="${barWidth}" height="${height}" fill="#4f7cac">` +
      `<title>${label}: ${t.total}</title></rect>` +
      `<text x="${x + barWidth / 2}" y="${chartHeight + labelHeight - 3}" font-size="9" text-anchor="middle">${escapeHtml(t.label.slice(-2))}</text>`
    )
  })
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${chartHeight + labelHeight}" ` +
    `width="${width}" height="${chartHeight + labelHeight}" role="img" aria-label="${escapeHtml(title)}">` +
    `${bars.join('')}</svg>`
  )
}

/** A two-column table of labelled totals. */
export function totalsTable(totals: readonly Total[], labelHeading: string, totalHeading: string): string {
  const rows = totals.map((t) => `<tr><td>${escapeHtml(t.label)}</td><td>${t.total}</td></tr>`).join('')
  return (
    `<table class="stats-table"><thead><tr><th>${escapeHtml(labelHeading)}</th>` +
    `<th>${escapeHtml(totalHeading)}</th></tr></thead><tbody>${rows}</tbody></table>`
  )
}

/** A whole HTML page: what a route that answers HTML sends. */
export function htmlPage(title: string, language: string, body: string): string {
  return (
    `<!doctype html><html lang="${escapeHtml(language)}"><head><meta charset="utf-8">` +
    `<title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`
  )
}
