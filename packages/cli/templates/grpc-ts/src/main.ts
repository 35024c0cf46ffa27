import { serve } from '@corral/plugin-sdk'
import plugin from './plugin.js'

await serve(plugin)
