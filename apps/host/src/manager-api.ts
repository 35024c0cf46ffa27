// The manager's API, as the host uses it: one place to import its types from.
export type {
  JobInfo,
  ManagerEvent,
  MountedMenuItem,
  MountedRoute,
  MountedTemplate,
  MountedWidget,
  PluginInfo,
  PluginManager,
  PluginManagerOptions,
  Registries,
} from '@corral/manager'
