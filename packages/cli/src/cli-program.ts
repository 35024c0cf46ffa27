import { PluginError } from '@corral/types'
import { Command, Option } from 'commander'
import { buildCommand } from './commands/build.js'
import { callCommand } from './commands/call.js'
import { devCommand } from './commands/dev.js'
import { newCommand, templateNames } from './commands/new.js'
import { packCommand } from './commands/pack.js'
import { policyCommand } from './commands/policy.js'
import { keygenCommand, signCommand, verifyCommand } from './commands/signatures.js'
import { validateCommand } from './commands/validate.js'
import { hostVersion } from './host-version.js'
import { formatError } from './output.js'

const policyHelp =
  "a YAML policies file, one policy or a list holding the plugin's (default: exactly what the plugin requests, approved)"

/**
 * The `corral` command line: every subcommand, parsed by commander. An action's failure is thrown
 * (a `PluginError`); `bin.ts` prints it and exits with code 1.
 *
 * @example
 * await createProgram().parseAsync(['node', 'corral', 'validate', 'plugins/stats'])
 */
export function createProgram(): Command {
  const program = new Command('corral')
    .description('Scaffold, check, build, run, pack and sign Corral plugins.')
    .version(hostVersion)
    // A usage error (an option missing, an argument too many) is printed as every failure is,
    // and commander exits with code 1. Subcommands inherit both settings.
    .configureOutput({
      outputError: (message, write) =>
        write(
          `${formatError(new PluginError('invalid_argument', message.replace(/^error: /, '').trim()))}\n`,
        ),
    })
    .showHelpAfterError('  (add --help for usage)')

  program
    .command('new <name>')
    .description('create a working plugin (manifest, source, build, a test) in ./<name>')
    .addOption(
      new Option('-t, --template <template>', 'the kind of plugin')
        .choices(templateNames)
        .makeOptionMandatory(),
    )
    .action((name: string, options: { template: string }) => newCommand(name, options.template))

  program
    .command('validate [dir]')
    .description('check the manifest, the config against its schema and, once built, the registration')
    .action((dir = '.') => validateCommand(dir))

  program
    .command('build [dir]')
    .description("run the plugin's build (its package.json build script, or its template's build)")
    .action((dir = '.') => buildCommand(dir))

  program
    .command('call <dir> <fn>')
    .description('load the plugin under a policy and call one function; prints the result as JSON')
    .option('-a, --args <json>', 'the arguments, as JSON (default: {}, or no input for an Extism plugin)')
    .option('-p, --policy <file>', policyHelp)
    .option('-v, --verbose', 'print every log line of the host and the plugin')
    .action((dir: string, fn: string, options) => callCommand(dir, fn, options))

  program
    .command('dev [dir]')
    .description(
      'run the plugin, rebuild and hot-reload it on every change, and call --call after each reload',
    )
    .option('-c, --call <fn>', 'the function to call after each reload')
    .option('-a, --args <json>', 'its arguments, as JSON (default: {}, or no input for an Extism plugin)')
    .option('-p, --policy <file>', policyHelp)
    .option('-v, --verbose', 'print every log line of the host and the plugin')
    .action((dir = '.', options) => devCommand(dir, options))

  program
    .command('pack [dir]')
    .description('write one .tgz with everything the plugin needs to run, and its sha256 digest')
    .option('-o, --out <file>', 'the archive, or a folder for it (default: <name>-<version>.tgz)')
    .option('-k, --key <file>', 'sign the packed plugin with this private key (PEM)')
    .action((dir = '.', options) => packCommand(dir, options))

  program
    .command('sign [dir]')
    .description('sign every file of the built plugin folder into plugin.sig (ed25519)')
    .requiredOption('-k, --key <file>', 'the private key (PEM), from corral keygen')
    .action((dir = '.', options: { key: string }) => signCommand(dir, options.key))

  program
    .command('verify [dir]')
    .description('check the plugin folder against its plugin.sig and the trusted keys')
    .requiredOption('-t, --trusted <files...>', 'trusted public keys (PEM)')
    .action((dir = '.', options: { trusted: string[] }) => verifyCommand(dir, options.trusted))

  program
    .command('keygen')
    .description('make an ed25519 key pair: <prefix>.key.pem and <prefix>.pub.pem')
    .requiredOption('-o, --out <prefix>', 'where to write the keys')
    .action((options: { out: string }) => keygenCommand(options.out))

  program
    .command('policy [dir]')
    .description('print the YAML policy that grants exactly what the plugin requests')
    .action((dir = '.') => policyCommand(dir))

  return program
}
