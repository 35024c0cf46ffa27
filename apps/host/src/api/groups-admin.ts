import { PluginError } from '@corral/types'
import type { Group, UsersStore } from '../auth/users-store.js'
import type { PluginManager } from '../manager-api.js'

/** A group as administrators see it: `plugin` names the loaded plugin that declares it. */
export interface GroupInfo extends Group {
  plugin?: string
}

/**
 * Every group: the host database's, and any a loaded plugin declares that the database lacks (its
 * creation failed at load), each with the plugin that declares it.
 */
export async function listGroups(users: UsersStore, manager: PluginManager): Promise<GroupInfo[]> {
  const declared = new Map(manager.registries.groups().map((g) => [g.name, g]))
  const stored: GroupInfo[] = await users.groups()
  const names = new Set(stored.map((g) => g.name))
  const missing = [...declared.values()]
    .filter((g) => !names.has(g.name))
    .map((g) => ({ name: g.name, description: g.description ?? '', members: [] }))
  return [...stored, ...missing]
    .map((g) => {
      const plugin = declared.get(g.name)?.plugin
      return plugin === undefined ? g : { ...g, plugin }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** Deletes a host group; a loaded plugin's group stays, since its routes check it. */
export async function deleteHostGroup(
  users: UsersStore,
  manager: PluginManager,
  name: string,
): Promise<void> {
  const declared = manager.registries.groups().find((g) => g.name === name)
  if (declared !== undefined)
    throw new PluginError(
      'invalid_argument',
      `group ${name} belongs to plugin ${declared.plugin}, which is loaded`,
      {
        fields: [{ field: 'name', message: `is declared by plugin ${declared.plugin}` }],
      },
    )
  await users.deleteGroup(name)
}
