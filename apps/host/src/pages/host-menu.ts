import type { MenuLocation } from '@corral/types'
import type { MountedMenuItem } from '../manager-api.js'
import type { HostStrings } from './host-strings.js'

const item = (
  id: keyof HostStrings,
  location: MenuLocation,
  path: string,
  order: number,
): MountedMenuItem => ({
  id,
  label: id,
  location,
  path,
  order,
  children: [],
})

/**
 * The host's own menu: what plugins' items join and their `hidden_menu_items` hide. Labels are keys
 * of the host's words. Administrators see the `admin` menu, other users the `agent` one.
 */
export const hostMenu: MountedMenuItem[] = [
  item('dashboard', 'agent', '/dashboard', 0),
  item('events', 'agent', '/events', 10),
  item('dashboard', 'admin', '/dashboard', 0),
  item('events', 'admin', '/events', 10),
  item('plugins', 'admin', '/admin/plugins', 20),
  item('jobs', 'admin', '/admin/jobs', 30),
  item('audit', 'admin', '/admin/audit', 40),
  item('users', 'admin', '/admin/users', 50),
]
