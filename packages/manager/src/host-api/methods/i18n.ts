import { z } from 'zod'
import { defineMethod } from '../method-handler.js'

/** `i18n.translate`: the host's translation of a key (the key itself when there is none). Always allowed. */
export const i18nTranslate = defineMethod({
  args: z.strictObject({
    key: z.string().min(1).max(256),
    args: z
      .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
      .max(32)
      .default([]),
    language: z.string().max(35).optional(),
  }),
  async run(args, scope) {
    const request = {
      plugin: scope.plugin,
      key: args.key,
      args: args.args,
      ...(args.language ? { language: args.language } : {}),
    }
    const text = await scope.deps.translate(request)
    return { text: text ?? args.key }
  },
})
