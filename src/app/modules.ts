import type { ApplicationConfig } from '../config/types.js';
import { accessModule } from './access.js';
import { execModule } from './exec.js';
import type { AppModule, ModuleDeps } from './chain.js';
import { notifyModule } from './notify.js';
import { relayModule } from './relay.js';

/**
 * The modules of one application's chain, in nginx-rtmp's order: access,
 * notify, exec, relay... The live step itself is the server's terminal step.
 */
export function buildModules(app: ApplicationConfig, deps: ModuleDeps): AppModule[] {
  const modules = [accessModule(app.access), notifyModule(app.notify), execModule(app, deps), relayModule(app, deps)].filter((m): m is AppModule => m !== undefined);
  deps.logger.debug({ app: app.name, modules: modules.map((m) => m.name) }, 'application modules');
  return modules;
}
