import { serve } from '@corral/plugin-sdk'
import helloGrpc from './plugin.js'

await serve(helloGrpc)
