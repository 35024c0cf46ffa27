import path from 'node:path'

/**
 * Whether `target` lies inside `root` (both absolute; resolve links first when they matter). The one
 * implementation of "a path stays inside the plugin's folder": `..` as a whole path segment, not a
 * name that begins with two dots; the folder itself is not inside it.
 */
export function isInsideFolder(root: string, target: string): boolean {
  const rel = path.relative(root, target)
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel)
}
