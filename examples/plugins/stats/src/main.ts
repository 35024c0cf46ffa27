import { serve } from '@corral/plugin-sdk'
import stats from './plugin.js'

await serve(stats)
