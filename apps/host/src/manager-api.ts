// The manager's API as the host uses it. Until @corral/manager exports it, the types are read from
// the contract file itself (types only: nothing of the manager's source is bundled).
export type {
  JobInfo,
  ManagerEvent,
  MountedMenuItem,
  MountedRoute,
  MountedWidget,
  PluginInfo,
  PluginManager,
  PluginManagerOptions,
  Registries,
} from '../../../packages/manager/src/plugin-manager/manager-api.js'
