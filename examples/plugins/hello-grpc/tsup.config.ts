export { pluginBundle as default } from '../../../tsup.config.base.js'
